/*
 * fuse_io.c: the volume server's sector I/O (spec/format.md §8). Byte b of `volume` is byte b of
 * the decrypted data area; sector i lives at container offset dataOffset + i * sectorSize and is
 * one XTS data unit with tweak firstTweak + i * tweakStep.
 *  - Reads pread the covering whole sectors and decrypt them in place; they take no lock.
 *  - Writes encrypt whole sectors in place and pwrite them; partial head/tail sectors are
 *    read-modify-written. Every write holds the striped locks of the regions it touches while it
 *    writes (RMW: while it reads, merges and writes), so concurrent writes into one sector never
 *    lose an update.
 *  - Zeroing (FALLOCATE ZERO_RANGE) writes encrypted zeros. A hole punch is refused unless the
 *    session allows discards (mount --allow-discards): then whole sectors become holes in the
 *    container (which shows an observer which sectors are free), partial ones encrypted zeros.
 *  - zero_sectors (vault format, spec/format.md §8): a stored sector of all-zero bytes (a hole, or
 *    a never-written sector of a quick container) reads as a zero plaintext sector instead of the
 *    XTS decryption of zeros. XTS of any plaintext is all-zero only with negligible probability.
 *  - fdatasync is skipped when nothing was written since the last successful one (group commit).
 */
#include "fuse_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

uint64_t vf_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void vf_count_add(_Atomic uint64_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}

/* Records an I/O failure seen while serving (a worker keeps serving). */
void vf_io_error(vf_worker *w, const char *what, int err) {
  vf_session *s = w->s;
  vf_count_add(&w->c.errors, 1);
  pthread_mutex_lock(&s->life);
  snprintf(s->last_io_error, sizeof s->last_io_error, "%s: %s", what, strerror(err));
  pthread_mutex_unlock(&s->life);
}

/* Records a fatal failure of a worker (it exits). The first one is kept. */
void vf_fatal_error(vf_session *s, const char *what, int err) {
  pthread_mutex_lock(&s->life);
  if (!s->failed) {
    s->failed = true;
    snprintf(s->message, sizeof s->message, "%s: %s", what, strerror(err));
  }
  pthread_mutex_unlock(&s->life);
}

static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, p + done, n - done, (off_t)(off + done));
    if (r > 0) {
      done += (size_t)r;
    } else if (r == 0) {
      return EIO; /* the container is shorter than its data area */
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pwrite(fd, p + done, n - done, (off_t)(off + done));
    if (r > 0) {
      done += (size_t)r;
    } else if (r == 0) {
      return EIO;
    } else if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Sector locks                                                                                 */

/*
 * The data area is cut into lock regions of 2^lock_shift bytes (64 KiB, or one sector when
 * sectors are larger), and region r is guarded by stripe r % VF_STRIPES. A write locks the stripes
 * of every region it touches, in ascending stripe order and each once, so two writers can never
 * wait on each other in a cycle. A run of regions maps to a contiguous (possibly wrapping) run of
 * stripes: [a, b], or [0, b] then [a, VF_STRIPES) when it wraps, or all of them.
 */
typedef struct {
  unsigned a, b;
  bool wrap, all;
} vf_lockset;

static vf_lockset lock_range(vf_session *s, uint64_t off, uint64_t len) {
  vf_lockset l = {0, 0, false, false};
  uint64_t r0 = off >> s->lock_shift, r1 = (off + len - 1) >> s->lock_shift;
  if (r1 - r0 + 1 >= VF_STRIPES) {
    l.all = true;
    for (unsigned i = 0; i < VF_STRIPES; i++) pthread_mutex_lock(&s->stripes[i]);
    return l;
  }
  l.a = (unsigned)(r0 % VF_STRIPES);
  l.b = (unsigned)(r1 % VF_STRIPES);
  if (l.a <= l.b) {
    for (unsigned i = l.a; i <= l.b; i++) pthread_mutex_lock(&s->stripes[i]);
  } else {
    l.wrap = true;
    for (unsigned i = 0; i <= l.b; i++) pthread_mutex_lock(&s->stripes[i]);
    for (unsigned i = l.a; i < VF_STRIPES; i++) pthread_mutex_lock(&s->stripes[i]);
  }
  return l;
}

static void unlock_range(vf_session *s, vf_lockset l) {
  if (l.all) {
    for (unsigned i = 0; i < VF_STRIPES; i++) pthread_mutex_unlock(&s->stripes[i]);
  } else if (!l.wrap) {
    for (unsigned i = l.a; i <= l.b; i++) pthread_mutex_unlock(&s->stripes[i]);
  } else {
    for (unsigned i = 0; i <= l.b; i++) pthread_mutex_unlock(&s->stripes[i]);
    for (unsigned i = l.a; i < VF_STRIPES; i++) pthread_mutex_unlock(&s->stripes[i]);
  }
}

/* ------------------------------------------------------------------------------------------ */
/* Sector I/O                                                                                   */

static inline uint64_t tweak_of(const vf_session *s, uint64_t sector) {
  return s->first_tweak + sector * s->tweak_step; /* no overflow: checked in serve() */
}

/* Whether a stored sector is all zero bytes (a hole). Ciphertext answers at the first word. The
   buffers are page-aligned and sectors at least 512 bytes, so the words are aligned. */
static bool zero_sector(const uint8_t *p, size_t len) {
  const uint64_t *q = (const uint64_t *)(const void *)p;
  uint64_t acc = 0;
  if (q[0] != 0) return false;
  for (size_t i = 0; i < len / 8; i++) acc |= q[i];
  return acc == 0;
}

/* zero_sectors: decrypts the runs of stored sectors that are not all zero; all-zero ones stay
   zeros (spec/format.md §8). */
static int decrypt_stored(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  uint64_t i = 0;
  while (i < n) {
    uint64_t j = i;
    while (j < n && !zero_sector(buf + (j << s->sector_shift), s->sector_size)) j++;
    if (j > i && vault_cipher_run(w->xts, buf + (i << s->sector_shift), (size_t)((j - i) << s->sector_shift), s->sector_size,
                               tweak_of(s, first + i), s->tweak_step, 0) != 0) {
      vf_io_error(w, "XTS decryption", EIO);
      return EIO;
    }
    i = j + 1; /* sector j (if any) is a hole: already zeros */
  }
  return 0;
}

/* Reads and decrypts sectors [first, first + n) into buf. 0 or an errno. */
int vf_read_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  int err = pread_full(s->io_fd, buf, bytes, s->data_offset + (first << s->sector_shift));
  if (err != 0) {
    vf_io_error(w, "reading the container", err);
    return EIO; /* the cause stays in stats().lastError; see write_sectors */
  }
  if (s->zero_sectors) return decrypt_stored(w, buf, first, n);
  if (vault_cipher_run(w->xts, buf, bytes, s->sector_size, tweak_of(s, first), s->tweak_step, 0) != 0) {
    vf_io_error(w, "XTS decryption", EIO);
    return EIO;
  }
  return 0;
}

/* Encrypts buf in place as sectors [first, first + n) and writes them. 0 or an errno. The caller
   holds the locks of the range. */
static int write_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n, bool encrypted) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  int err;
  if (!encrypted &&
      vault_cipher_run(w->xts, buf, bytes, s->sector_size, tweak_of(s, first), s->tweak_step, 1) != 0) {
    vf_io_error(w, "XTS encryption", EIO);
    return EIO;
  }
  err = pwrite_full(s->io_fd, buf, bytes, s->data_offset + (first << s->sector_shift));
  /* Counted even when it failed part-way: some of it may have reached the file. */
  atomic_fetch_add(&s->write_gen, 1);
  if (err != 0) {
    vf_io_error(w, "writing the container", err);
    /* A block device has a fixed size: failing to store a sector is an I/O error, whatever the
       host said. Passing ENOSPC on would tell the filesystem inside that *it* is full (df inside
       shows free space), and the fallback engine already answers EIO. vf_io_error() keeps the cause
       (stats().lastError). */
    return EIO;
  }
  return 0;
}

/*
 * Writes `len` plaintext bytes at data-area offset `off` (in range, len > 0). `src` NULL means
 * zeros. `src` may be encrypted in place when the write is sector-aligned (it is our request
 * buffer). Partial head/tail sectors are read-modify-written in w->data; len must then leave room:
 * the covering sectors are at most VF_MAX_IO + 2 sectors.
 */
int vf_write_range(vf_worker *w, uint8_t *src, uint64_t off, size_t len) {
  vf_session *s = w->s;
  uint64_t mask = s->sector_size - 1;
  uint64_t first = off >> s->sector_shift, last = (off + len - 1) >> s->sector_shift;
  uint64_t n = last - first + 1;
  bool head = (off & mask) != 0, tail = ((off + len) & mask) != 0;
  vf_lockset l;
  int err = vf_protect_write(w, off, len);
  if (err != 0) return err;
  if (src != NULL && !head && !tail) {
    /* Whole sectors: encrypt outside the lock (the buffer is ours), lock only the write, so a
       concurrent RMW cannot put back stale data over it. */
    if (vault_cipher_run(w->xts, src, len, s->sector_size, tweak_of(s, first), s->tweak_step, 1) != 0) {
      vf_io_error(w, "XTS encryption", EIO);
      return EIO;
    }
    l = lock_range(s, off, len);
    err = write_sectors(w, src, first, n, true);
    unlock_range(s, l);
    return err;
  }
  l = lock_range(s, off, len);
  if (head) err = vf_read_sectors(w, w->data, first, 1);
  if (err == 0 && tail && (last != first || !head))
    err = vf_read_sectors(w, w->data + ((last - first) << s->sector_shift), last, 1);
  if (err == 0) {
    uint8_t *dst = w->data + (off & mask);
    if (src != NULL) {
      memcpy(dst, src, len);
    } else {
      memset(dst, 0, len);
    }
    err = write_sectors(w, w->data, first, n, false);
  }
  unlock_range(s, l);
  return err;
}

/* Encrypted zeros over [off, end), a chunk of at most VF_MAX_IO bytes at a time (each under its
   own locks). A chunk ends on a VF_MAX_IO boundary of the data area, so its covering sectors fit
   w->data. */
int vf_zero_range(vf_worker *w, uint64_t off, uint64_t end) {
  int err = 0;
  while (err == 0 && off < end) {
    uint64_t chunk_end = (off / VF_MAX_IO + 1) * VF_MAX_IO;
    if (chunk_end > end) chunk_end = end;
    err = vf_write_range(w, NULL, off, (size_t)(chunk_end - off));
    off = chunk_end;
  }
  return err;
}

/*
 * Discard (allow_discards): the whole sectors of [off, end) become holes in the container
 * (PUNCH_HOLE | KEEP_SIZE at data_offset + sector * sector_size), which read back as zeros through
 * zero_sectors; the partial sectors at the edges get encrypted zeros (read-modify-write), since a
 * hole must cover whole sectors. Where the host filesystem cannot punch (EOPNOTSUPP), the whole
 * sectors get encrypted zeros too: the discard still zeroes, it only frees nothing.
 */
int vf_discard_range(vf_worker *w, uint64_t off, uint64_t end) {
  vf_session *s = w->s;
  uint64_t mask = s->sector_size - 1;
  uint64_t a = (off + mask) & ~mask, b = end & ~mask;
  vf_lockset l;
  int err = vf_protect_write(w, off, end - off);
  if (err != 0) return err;
  if (a >= b) return vf_zero_range(w, off, end); /* within one sector, or two partial ones */
  if (off < a) err = vf_zero_range(w, off, a);
  if (err == 0 && b < end) err = vf_zero_range(w, b, end);
  if (err != 0) return err;
  l = lock_range(s, a, b - a);
  if (fallocate(s->io_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(s->data_offset + a), (off_t)(b - a)) != 0)
    err = errno;
  atomic_fetch_add(&s->write_gen, 1); /* the next fsync covers the punch */
  unlock_range(s, l);
  if (err == EOPNOTSUPP || err == ENOSYS) return vf_zero_range(w, a, b);
  if (err != 0) {
    vf_io_error(w, "punching a hole in the container", err);
    return EIO;
  }
  return 0;
}

/* fdatasync unless every completed write is already covered by a successful one. */
int vf_sync_container(vf_session *s) {
  uint64_t want, gen;
  int err = 0;
  if (s->read_only) return 0;
  want = atomic_load(&s->write_gen);
  if (atomic_load(&s->synced_gen) >= want) return 0;
  pthread_mutex_lock(&s->sync_lock);
  /* A sync that ran while we waited for the lock may already cover us (group commit). */
  if (atomic_load(&s->synced_gen) < want) {
    gen = atomic_load(&s->write_gen); /* everything completed before this fdatasync starts */
    if (fdatasync(s->io_fd) != 0) {
      err = errno;
    } else {
      atomic_store(&s->synced_gen, gen);
    }
  }
  pthread_mutex_unlock(&s->sync_lock);
  return err;
}
