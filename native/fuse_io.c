/*
 * fuse_io.c: the volume server's sector I/O (spec/format.md §8). Byte b of `volume` is byte b of
 * the decrypted data area; sector i lives at container offset dataOffset + i * sectorSize and is
 * one XTS data unit with tweak firstTweak + i * tweakStep.
 *  - The container is read and written in I/O units of io_size bytes: the sector size, or, where
 *    the container is O_DIRECT on a host whose alignment is larger (a 4 KiB-sector disk under
 *    512-byte sectors), that alignment (vf_open_direct). A unit holds whole sectors.
 *  - Reads pread the covering whole units and decrypt the wanted sectors in place; they take no
 *    lock. A large O_DIRECT read goes in 256 KiB pieces through the worker's own io_uring, all in
 *    flight at once, each decrypted as it lands (read_pipelined).
 *  - Writes encrypt whole sectors in place and pwrite them when they cover whole units; otherwise
 *    the covering units are read-modify-written: partial head/tail sectors decrypted and merged,
 *    the sectors of the unit the write does not touch written back as they were stored. Every
 *    write holds the striped locks of the regions it touches while it writes (RMW: while it reads,
 *    merges and writes), so concurrent writes into one unit never lose an update.
 *  - Zeroing (FALLOCATE ZERO_RANGE) writes encrypted zeros. A hole punch is refused unless the
 *    session allows discards (mount --allow-discards): then whole sectors become holes in the
 *    container (which shows an observer which sectors are free), partial ones encrypted zeros.
 *  - zero_sectors (vault format, spec/format.md §8): a stored sector of all-zero bytes (a hole, or
 *    a never-written sector of a quick container) reads as a zero plaintext sector instead of the
 *    XTS decryption of zeros. XTS of any plaintext is all-zero only with negligible probability.
 *  - Reads are O_DIRECT where the host allows, writes buffered (vf_open_direct says why and what
 *    was measured). fdatasync is skipped when nothing was written since the last successful one
 *    (group commit).
 *  - A container read, write, sync or punch the host refuses is counted by errno with its offset
 *    and time (vf_container_error; `vault list` shows them) and answered ENOSPC when the host is
 *    full, EIO otherwise. A short read or write goes on from where the host stopped; a request is
 *    answered success only once every byte of it reached the container.
 */
#include "fuse_internal.h"
#include "secure_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int vf_container_error(vf_worker *w, const char *op, int err, int64_t offset) {
  vf_session *s = w->s;
  int kind = err == EIO ? VF_CERR_EIO : err == ENOSPC || err == EDQUOT ? VF_CERR_ENOSPC : err == EROFS ? VF_CERR_EROFS : VF_CERR_OTHER;
  char what[96];
  atomic_fetch_add(&s->container_errors[kind], 1);
  pthread_mutex_lock(&s->life);
  s->last_cerr = (vf_cerr){.op = op, .err = err, .offset = offset, .at_ms = vf_now_ms()};
  pthread_mutex_unlock(&s->life);
  if (offset >= 0) {
    snprintf(what, sizeof what, "%s of the container at offset %lld", op, (long long)offset);
  } else {
    snprintf(what, sizeof what, "%s of the container", op);
  }
  vf_io_error(w, what, err);
  /* The served file stands for a block device. A full host is told as such (the loop device turns
     it into BLK_STS_NOSPC, and the writer's fsync says "No space left on device", as over a full
     thin pool): the user learns to free space on the host, not to run fsck. Everything else the
     host said (EIO, EROFS of a host filesystem remounted read-only, ...) is a failed device I/O. */
  return kind == VF_CERR_ENOSPC ? ENOSPC : EIO;
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

/* Whole-buffer pread: 0, or the errno with *at the file offset where it failed (a short read
   is retried from where it stopped; end of file is EIO). */
static int pread_full(int fd, uint8_t *p, size_t n, uint64_t off, uint64_t *at) {
  size_t done = 0;
  while (done < n) {
    *at = off + done;
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

/* Whole-buffer pwrite: 0, or the errno with *at the file offset where it failed. A short write
   goes on from where it stopped, so the next pwrite reports why the rest could not be written
   (ENOSPC, EIO); never success for bytes not written. */
static int pwrite_full(int fd, const uint8_t *p, size_t n, uint64_t off, uint64_t *at) {
  size_t done = 0;
  while (done < n) {
    *at = off + done;
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

/*
 * Reopens the container with O_DIRECT when its filesystem or device allows our I/O pattern
 * (statx STATX_DIOALIGN: our page-aligned buffers, and I/O in units of io_size: the sector size,
 * or the offset alignment where that is larger and divides the data area's offset and size, as a
 * 4 KiB-sector disk under 512-byte VeraCrypt or LUKS1 sectors). Falls back to the buffered
 * descriptor otherwise. The flock stays on the original open file description, which we keep.
 *
 * Writes take the buffered descriptor unless the session says otherwise (bufferedWrites false:
 * wr_fd = io_fd): the host writes back behind the server while it encrypts the next request, as a
 * loop device over a file does, and FSYNC/FLUSH still fdatasync (vf_sync), so nothing is
 * acknowledged durable before it is. A large write (VF_EARLY_WRITEBACK and up) starts its own
 * writeback at once (sync_file_range): otherwise the host wrote nothing until the guest's fsync, so
 * a sequential write paid for the encryption and then for the disk, one after the other (fio 256
 * MiB bs=1M end_fsync against the host directory, classic: 0.61-0.74x before, 0.82-0.95x after;
 * io_uring 1.03-1.14x). Large reads (VF_SMALL_READ and up: sequential ones) take the
 * O_DIRECT descriptor, with no host readahead or second copy (buffered, cold sequential reads
 * measured 0.11-0.15x plain against 0.7-1.1x direct). Small reads take the buffered one: a direct
 * read of a range with dirty pages first waits for their writeback (the kernel's coherence rule,
 * so every read sees the last write either way), which made 4 KiB random reads after random
 * writes 0.34-0.37x plain. The buffered descriptor is POSIX_FADV_RANDOM: a small read brings in
 * only its own pages. The host page cache then holds ciphertext (never plaintext). Figures, one
 * quick bench run each, bench/RESULTS.md (2026-12-07).
 */
bool vf_open_direct(vf_session *s) {
  struct statx stx;
  struct stat a, b;
  char path[64];
  uint32_t align;
  int fd;
  if (statx(s->container_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) != 0 || !(stx.stx_mask & STATX_DIOALIGN))
    return false;
  align = stx.stx_dio_offset_align;
  if (align == 0 || (align & (align - 1)) != 0 || align > 4096 || stx.stx_dio_mem_align == 0 || stx.stx_dio_mem_align > 4096 ||
      s->data_offset % align != 0 || (align > s->sector_size && s->data_size % align != 0))
    return false;
  snprintf(path, sizeof path, "/proc/self/fd/%d", s->container_fd);
  fd = open(path, (s->read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_CLOEXEC);
  if (fd < 0) return false;
  if (fstat(fd, &a) != 0 || fstat(s->container_fd, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
    close(fd);
    return false;
  }
  s->io_fd = fd;
  if (align > s->sector_size) s->io_size = align;
  (void)posix_fadvise(s->container_fd, 0, 0, POSIX_FADV_RANDOM); /* small reads only (read_stored) */
  return true;
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

/* Decrypts the stored sectors [first, first + n) in buf, in place (zero_sectors: holes stay zeros). */
static int decrypt_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  if (s->zero_sectors) return decrypt_stored(w, buf, first, n);
  if (vault_cipher_run(w->xts, buf, (size_t)(n << s->sector_shift), s->sector_size, tweak_of(s, first), s->tweak_step, 0) != 0) {
    vf_io_error(w, "XTS decryption", EIO);
    return EIO;
  }
  return 0;
}

/* Reads the stored bytes of data-area range [pos, pos + bytes) (whole sectors) into buf. A range
   that is not whole I/O units is read as its covering units and moved down to buf[0]: buf needs
   room for those. 0 or an errno (vf_container_error). */
static int read_stored(vf_worker *w, uint8_t *buf, uint64_t pos, size_t bytes) {
  vf_session *s = w->s;
  uint64_t imask = s->io_size - 1, a = pos & ~imask, b = (pos + bytes + imask) & ~imask, at;
  /* Small reads through the page cache with the writes (vf_open_direct says why). */
  int fd = b - a < VF_SMALL_READ ? s->wr_fd : s->io_fd;
  int err = pread_full(fd, buf, (size_t)(b - a), s->data_offset + a, &at);
  if (err != 0) return vf_container_error(w, "read", err, (int64_t)at);
  if (a != pos) memmove(buf, buf + (pos - a), bytes);
  return 0;
}

#define NOT_PIPELINED (-1)

/* The length of the piece of `total` bytes that starts at `off`, pieces being `piece` bytes. */
static inline size_t piece_len(size_t total, size_t off, size_t piece) { return total - off < piece ? total - off : piece; }

/* The worker's ring for pipelined reads, made on first use by its own thread; NULL where io_uring
   is unavailable (kernel.io_uring_disabled, an old kernel): then reads take pread. */
static struct io_uring *read_ring(vf_worker *w) {
  if (w->rd == NULL && !w->rd_failed) {
    struct io_uring *r = calloc(1, sizeof *r);
    if (r != NULL && io_uring_queue_init(VF_READ_PIECES, r, 0) == 0) {
      w->rd = r;
    } else {
      free(r);
      w->rd_failed = true;
    }
  }
  return w->rd;
}

void vf_read_ring_free(vf_worker *w) {
  if (w->rd == NULL) return;
  io_uring_queue_exit(w->rd);
  free(w->rd);
  w->rd = NULL;
}

/* Waits for one completion of a pipelined read: its piece index and result. */
static void reap_piece(struct io_uring *ring, unsigned *piece, int *res) {
  struct io_uring_cqe *cqe;
  int rc;
  while ((rc = io_uring_wait_cqe(ring, &cqe)) == -EINTR) {
  }
  if (rc < 0) abort(); /* a submitted read whose buffer we cannot release: nothing safe is left */
  *piece = (unsigned)io_uring_cqe_get_data64(cqe);
  *res = cqe->res;
  io_uring_cqe_seen(ring, cqe);
}

/*
 * The whole units [first, first + n) of a large O_DIRECT read, in VF_READ_PIECE pieces that are all
 * in flight at once, each decrypted as soon as it lands: the disk reads the rest of the request
 * while the CPU decrypts its start (one pread and then one decryption made them wait for each
 * other). Every submitted piece is reaped before this returns, whatever failed. Returns
 * NOT_PIPELINED when the pieces could not all be submitted (the ring is then given up, and the
 * caller preads), else 0 or an errno.
 */
static int read_pipelined(vf_worker *w, struct io_uring *ring, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  uint64_t pos = s->data_offset + (first << s->sector_shift), at = pos;
  unsigned pieces = (unsigned)((bytes + VF_READ_PIECE - 1) / VF_READ_PIECE), queued = 0, inflight, landed;
  int rc, io_err = 0, err = 0;
  for (; queued < pieces; queued++) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    size_t off = (size_t)queued * VF_READ_PIECE, len = piece_len(bytes, off, VF_READ_PIECE);
    if (sqe == NULL) break;
    io_uring_prep_read(sqe, s->io_fd, buf + off, (unsigned)len, pos + off);
    io_uring_sqe_set_data64(sqe, queued);
  }
  while ((rc = io_uring_submit(ring)) == -EINTR || rc == -EAGAIN) {
  }
  if (rc != (int)queued || queued != pieces) {
    /* Some pieces may be queued and not submitted: they would go with this ring's next submit, into
       a buffer by then reused. Reap what went, and give the ring up for this worker. */
    for (int i = 0, res; i < rc; i++) reap_piece(ring, &landed, &res);
    vf_read_ring_free(w);
    w->rd_failed = true;
    return NOT_PIPELINED;
  }
  for (inflight = queued; inflight > 0; inflight--) {
    int res;
    reap_piece(ring, &landed, &res);
    size_t off = (size_t)landed * VF_READ_PIECE, len = piece_len(bytes, off, VF_READ_PIECE);
    if (res < 0) {
      if (io_err == 0) io_err = -res, at = pos + off;
      continue;
    }
    /* A short read (the host stopped early) goes on from where it stopped, as pread_full does. */
    if ((size_t)res < len && io_err == 0) {
      int e = pread_full(s->io_fd, buf + off + res, len - (size_t)res, pos + off + (uint64_t)res, &at);
      if (e != 0) {
        io_err = e;
        continue;
      }
    }
    if (io_err == 0 && err == 0) err = decrypt_sectors(w, buf + off, first + (off >> s->sector_shift), len >> s->sector_shift);
  }
  if (io_err != 0) return vf_container_error(w, "read", io_err, (int64_t)at);
  return err;
}

/* Reads and decrypts sectors [first, first + n) into buf (room for their covering I/O units, unless
   they are whole units). 0 or an errno. */
int vf_read_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  uint64_t imask = s->io_size - 1, pos = first << s->sector_shift;
  /* Whole units read O_DIRECT (read_stored's large reads), two pieces or more. */
  if (s->direct_io && bytes >= 2 * VF_READ_PIECE && ((pos | bytes) & imask) == 0) {
    struct io_uring *ring = read_ring(w);
    int err = ring == NULL ? NOT_PIPELINED : read_pipelined(w, ring, buf, first, n);
    if (err != NOT_PIPELINED) return err;
  }
  int err = read_stored(w, buf, pos, bytes);
  return err != 0 ? err : decrypt_sectors(w, buf, first, n);
}

/* Writes the encrypted sectors [first, first + n) in buf (whole I/O units). 0 or an errno. The
   caller holds the locks of the range. */
static int write_sectors(vf_worker *w, const uint8_t *buf, uint64_t first, uint64_t n) {
  vf_session *s = w->s;
  size_t bytes = (size_t)(n << s->sector_shift);
  uint64_t at;
  uint64_t off = s->data_offset + (first << s->sector_shift);
  int err = 0;
  /* A large buffered write (wr_fd is not O_DIRECT) starts its writeback now, so the host disk
     writes while the next requests are encrypted instead of all at the next FSYNC (vf_open_direct
     has the figures), and it does so every VF_EARLY_WRITEBACK bytes: the disk starts on the first
     256 KiB of a 1 MiB request while the rest is copied in, and the container's inode lock, which
     every worker's write takes, is held for a quarter as long at a time. Measured on fresh --quick
     volumes (fio 256 MiB bs=1M end_fsync, classic, addons swapped between rounds): the first
     write 534-643 MiB/s in one piece, 648-868 in 256 KiB pieces (128 KiB: 645-679, 512 KiB:
     709-711); an overwrite 701-970 against 914-941. Small (random) writes stay in the page cache to
     be merged. Durability still comes from vf_sync's fdatasync, which also reports a failed
     writeback. */
  if ((s->wr_fd != s->io_fd || !s->direct_io) && bytes >= VF_EARLY_WRITEBACK) {
    for (size_t done = 0; err == 0 && done < bytes; done += VF_EARLY_WRITEBACK) {
      size_t len = piece_len(bytes, done, VF_EARLY_WRITEBACK);
      err = pwrite_full(s->wr_fd, buf + done, len, off + done, &at);
      if (err == 0) (void)sync_file_range(s->wr_fd, (off_t)(off + done), (off_t)len, SYNC_FILE_RANGE_WRITE);
    }
  } else {
    err = pwrite_full(s->wr_fd, buf, bytes, off, &at);
  }
  /* Counted even when it failed part-way: some of it may have reached the file. */
  atomic_fetch_add(&s->write_gen, 1);
  /* ENOSPC (a sparse container on a full host) or EIO: see vf_container_error. */
  return err != 0 ? vf_container_error(w, "write", err, (int64_t)at) : 0;
}

/*
 * The read-modify-write of a write that does not cover whole I/O units, under the locks of its
 * covering units [a, b): their stored bytes where the write does not overwrite them whole, the
 * partly written sectors decrypted, the new plaintext merged, the written sectors encrypted, and
 * [a, b) written back. A unit's other sectors go back as they were stored (a hole stays zeros).
 */
uint8_t *vf_worker_data(vf_worker *w) {
  int err = 0;
  if (w->data == NULL) w->data = vault_secure_alloc_opt(w->data_len, w->s->lock_io, &err);
  return w->data;
}

static int merge_units(vf_worker *w, const uint8_t *src, uint64_t off, size_t len, uint64_t a, uint64_t b) {
  vf_session *s = w->s;
  uint64_t mask = s->sector_size - 1, io = s->io_size;
  uint64_t first = off >> s->sector_shift, last = (off + len - 1) >> s->sector_shift;
  bool head = (off & mask) != 0, tail = ((off + len) & mask) != 0;
  uint8_t *d = vf_worker_data(w), *sectors;
  int err = 0;
  if (d == NULL) return ENOMEM;
  sectors = d + ((first << s->sector_shift) - a);
  if (off != a) err = read_stored(w, d, a, (size_t)io);
  if (err == 0 && off + len != b && (b - io != a || off == a)) err = read_stored(w, d + (b - io - a), b - io, (size_t)io);
  if (err == 0 && head) err = decrypt_sectors(w, sectors, first, 1);
  if (err == 0 && tail && (last != first || !head)) err = decrypt_sectors(w, sectors + ((last - first) << s->sector_shift), last, 1);
  if (err != 0) return err;
  if (src != NULL) {
    memcpy(d + (off - a), src, len);
  } else {
    memset(d + (off - a), 0, len);
  }
  if (vault_cipher_run(w->xts, sectors, (size_t)((last - first + 1) << s->sector_shift), s->sector_size, tweak_of(s, first), s->tweak_step, 1) != 0) {
    vf_io_error(w, "XTS encryption", EIO);
    return EIO;
  }
  return write_sectors(w, d, a >> s->sector_shift, (b - a) >> s->sector_shift);
}

/*
 * Writes `len` plaintext bytes at data-area offset `off` (in range, len > 0). `src` NULL means
 * zeros. `src` may be encrypted in place when the write covers whole I/O units (it is our request
 * buffer); otherwise the covering units are read-modify-written in w->data (merge_units), which
 * holds them: at most VF_MAX_IO + 2 units.
 */
int vf_write_range(vf_worker *w, uint8_t *src, uint64_t off, size_t len) {
  vf_session *s = w->s;
  uint64_t imask = s->io_size - 1, a = off & ~imask, b = (off + len + imask) & ~imask;
  vf_lockset l;
  int err = vf_protect_write(w, off, len);
  if (err != 0) return err;
  if (src != NULL && a == off && b == off + len) {
    /* Whole units: encrypt outside the lock (the buffer is ours), lock only the write, so a
       concurrent RMW cannot put back stale data over it. */
    if (vault_cipher_run(w->xts, src, len, s->sector_size, tweak_of(s, off >> s->sector_shift), s->tweak_step, 1) != 0) {
      vf_io_error(w, "XTS encryption", EIO);
      return EIO;
    }
    l = lock_range(s, off, len);
    err = write_sectors(w, src, off >> s->sector_shift, len >> s->sector_shift);
    unlock_range(s, l);
    return err;
  }
  l = lock_range(s, a, b - a);
  err = merge_units(w, src, off, len, a, b);
  unlock_range(s, l);
  return err;
}

/* Encrypted zeros over [off, end), a chunk of at most VF_MAX_IO bytes at a time (each under its
   own locks). A chunk ends on a VF_MAX_IO boundary of the data area, so its covering units fit
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
 * Discard (allow_discards): the whole I/O units of [off, end) become holes in the container
 * (PUNCH_HOLE | KEEP_SIZE at data_offset + off), which read back as zeros through zero_sectors; the
 * partial units at the edges get encrypted zeros (read-modify-write), since a hole must cover whole
 * sectors and the host then frees whole blocks. Where the host filesystem cannot punch (EOPNOTSUPP), the whole
 * sectors get encrypted zeros too: the discard still zeroes, it only frees nothing.
 */
int vf_discard_range(vf_worker *w, uint64_t off, uint64_t end) {
  vf_session *s = w->s;
  uint64_t mask = s->io_size - 1;
  uint64_t a = (off + mask) & ~mask, b = end & ~mask;
  vf_lockset l;
  int err = vf_protect_write(w, off, end - off);
  if (err != 0) return err;
  if (a >= b) return vf_zero_range(w, off, end); /* within one unit, or two partial ones */
  if (off < a) err = vf_zero_range(w, off, a);
  if (err == 0 && b < end) err = vf_zero_range(w, b, end);
  if (err != 0) return err;
  l = lock_range(s, a, b - a);
  if (fallocate(s->io_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(s->data_offset + a), (off_t)(b - a)) != 0)
    err = errno;
  atomic_fetch_add(&s->write_gen, 1); /* the next fsync covers the punch */
  unlock_range(s, l);
  if (err == EOPNOTSUPP || err == ENOSYS) return vf_zero_range(w, a, b);
  return err != 0 ? vf_container_error(w, "punch", err, (int64_t)(s->data_offset + a)) : 0;
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
