/*
 * fuse_protect.c: hidden-volume protection (mount --protect-hidden), as VeraCrypt's own: the outer
 * volume of a VeraCrypt/TrueCrypt container is served read-write, but no write may land in the
 * byte range of the data area where the hidden volume lives ([protect_start, protect_end), set by
 * the CLI, which unlocked the hidden header to learn it). The first write that would reach it is
 * refused with EIO and latches the session read-only: every later write, wherever it lands, fails
 * with EROFS, so the filesystem inside cannot go on writing a half-applied change elsewhere. The
 * latch is reported by stats().protectionTripped (and from there by `vault list`).
 *
 * Checked on every path that changes the container (vf_write_range, which writes, zeroes and
 * read-modify-writes; vf_discard_range, which punches holes) before any lock is taken or any byte
 * is written. A write that passed the check just before another one tripped the latch lies outside
 * the range, so it harms nothing.
 */
#include "fuse_internal.h"

#include <errno.h>

int vf_protect_write(vf_worker *w, uint64_t off, uint64_t len) {
  vf_session *s = w->s;
  if (s->protect_end == 0) return 0; /* no protection asked for */
  if (atomic_load(&s->protect_tripped)) return EROFS;
  if (off < s->protect_end && off + len > s->protect_start) {
    atomic_store(&s->protect_tripped, true);
    vf_io_error(w, "a write into the protected hidden volume was refused; the volume is read-only from now on", EIO);
    return EIO;
  }
  return 0;
}
