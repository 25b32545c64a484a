/*
 * fuse_internal.h: what the parts of the native volume server share (not an API; see
 * fuse_server.h for the one entry point, and fuse_session.c's comment for the design).
 *
 *   fuse_io.c        sector I/O: pread/pwrite, XTS, write locks, fdatasync (spec/format.md §8)
 *   fuse_protect.c   hidden-volume protection: refuses writes into a range, latches read-only
 *   fuse_ops.c       FUSE operations: one request in, one reply out, whatever the transport
 *   fuse_classic.c   the classic transport: worker threads read()/writev() cloned /dev/fuse fds
 *   fuse_uring.c     the io_uring transport: a thread and a ring per kernel queue (per CPU)
 *   fuse_mount.c     mount(2), finding our mount, unmounting it, aborting the connection
 *   fuse_user.c      as an ordinary user: fusermount3 mounts and unmounts, RLIMIT_MEMLOCK
 *   fuse_session.c   a session's life: open, key, buffers, mount, workers, teardown
 *   fuse_napi.c      N-API glue: serve / wait / stop / stats
 */
#ifndef VAULT_FUSE_INTERNAL_H
#define VAULT_FUSE_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np, statx, O_DIRECT, pthread_kill */
#endif
#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif

#include "cipher_engine.h"

#include <linux/fuse.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#if FUSE_KERNEL_VERSION != 7 || FUSE_KERNEL_MINOR_VERSION < 38
#error "needs <linux/fuse.h> for FUSE protocol 7.38 or later"
#endif

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                   */

#define VF_MAX_IO (1u << 20)              /* max_write, max_read: 1 MiB */
#define VF_MAX_PAGES 256                  /* VF_MAX_IO / 4 KiB */
#define VF_REQ_BUF (VF_MAX_IO + 4096)     /* room for any request: headers + max_write of data */
/* Requests are read at this offset into a page-aligned buffer, so that a WRITE's data (after
   fuse_in_header and fuse_write_in) starts on a page boundary: aligned writes are encrypted in
   place and can go to an O_DIRECT container descriptor without a copy. */
#define VF_REQ_SKEW (4096 - sizeof(struct fuse_in_header) - sizeof(struct fuse_write_in))
#define VF_REQ_MEM (VF_REQ_SKEW + VF_REQ_BUF)
#define VF_MAX_THREADS 64
/* Container reads below this many bytes go through wr_fd (buffered where writes are; fuse_io.c). */
#define VF_SMALL_READ (64 * 1024)
/* Buffered container writes of this many bytes and more start their writeback at once, in pieces of
   this size (fuse_io.c write_sectors). */
#define VF_EARLY_WRITEBACK (256 * 1024)
/* O_DIRECT container reads of two pieces or more go in pieces of this size, all in flight at once,
   each decrypted as it lands (fuse_io.c vf_read_sectors). */
#define VF_READ_PIECE (256 * 1024)
/* A read's covering units span VF_MAX_IO and a unit at most: one piece more than VF_MAX_IO needs. */
#define VF_READ_PIECES ((VF_MAX_IO + VF_READ_PIECE - 1) / VF_READ_PIECE + 1)
#define VF_DEFAULT_THREADS 8
#define VF_MIN_SECTOR 512
#define VF_MAX_SECTOR 65536
#define VF_STRIPES 1024                   /* striped write locks */
#define VF_LOCK_SHIFT 16                  /* one lock region: 64 KiB (or one sector if larger) */
#define VF_TTL 86400                      /* entry/attr timeout (s): the tree never changes */
#define VF_MAX_BACKGROUND 64
#define VF_CONGESTION 48
#define VF_INIT_TIMEOUT_S 30
#define VF_STOP_GRACE_MS 1000             /* after umount, before aborting the connection */
/* io_uring: options.threads queue threads (at least one per kernel queue), each with its own ring
   of VF_URING_DEPTH entries, not pinned. Measured on 2 CPUs (fio direct on the volume file, MiB/s
   seq write/read 1M, k IOPS rand read/write 4k, classic then io_uring, back to back): 1 thread per
   queue, depth 4, pinned: 1668/1560/23/29 vs 1152/1189/18/27; same unpinned, depth 8: 1942/2068/30/26
   vs 1155/1191/19/20; 4 threads per queue, depth 2: 1538/1417/18/19 vs 2192/2584/34/31. A queue
   thread serves one request at a time, so it takes several per queue to overlap container I/O. */
#define VF_URING_DEPTH 2
#define VF_URING_PIN 0
#define VF_URING_REGISTER_TIMEOUT_S 10

#define VF_ROOT_ID FUSE_ROOT_ID
#define VF_FILE_ID 2
#define VF_FILE_NAME "volume"

_Static_assert(VF_REQ_BUF >= FUSE_MIN_READ_BUFFER, "FUSE needs at least an 8 KiB read buffer");
_Static_assert(VF_REQ_BUF >= sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in) + VF_MAX_IO,
               "the kernel refuses reads into a buffer smaller than headers + max_write");

/* ------------------------------------------------------------------------------------------ */
/* Session and workers                                                                          */

typedef struct vf_session vf_session;
typedef struct vf_ring vf_ring; /* fuse_uring.c */

typedef struct {
  /* Per-worker counters, summed by stats(); relaxed atomics (only this worker writes them). */
  _Atomic uint64_t reads, writes, bytes_read, bytes_written, errors, last_io_ms;
} vf_counters;

/* One thread serving requests, with what it needs of its own: an XTS context and buffers. */
typedef struct {
  vf_counters c; /* first: keeps each worker's hot counters on its own cache lines */
  vf_session *s;
  int fd;                /* classic transport: the mounting /dev/fuse descriptor (worker 0) or a clone */
  vf_ring *ring;         /* io_uring transport: this queue thread's ring and entries */
  struct io_uring *rd;   /* pipelined container reads (fuse_io.c): made on first use by this thread */
  bool rd_failed;        /* io_uring_queue_init refused: reads take pread */
  pthread_t tid;
  bool started;          /* JS thread */
  bool exited;           /* under s->life */
  vault_cipher_ctx *xts; /* keyed with the session's cipher chain */
  uint8_t *req_mem;      /* VF_REQ_MEM bytes, locked (classic workers only: where requests land) */
  uint8_t *req;          /* req_mem + VF_REQ_SKEW (see VF_REQ_SKEW) */
  uint8_t *data;         /* data_len bytes, locked: covering sectors of a read / RMW / zero range,
                            and the classic transport's reply buffer */
  size_t data_len;
} __attribute__((aligned(64))) vf_worker;

typedef enum { VF_RUNNING, VF_UNMOUNTED, VF_STOPPED, VF_ERROR } vf_reason;

/* Failed container I/O, by the host's errno (stats().containerErrors). */
enum { VF_CERR_EIO, VF_CERR_ENOSPC, VF_CERR_EROFS, VF_CERR_OTHER, VF_CERR_KINDS };
/* The latest failed container I/O (stats().lastContainerError). */
typedef struct {
  const char *op;  /* "read", "write", "sync" or "punch"; NULL: none yet */
  int err;         /* the host's errno */
  int64_t offset;  /* container byte offset where it failed; -1 for a sync */
  uint64_t at_ms;  /* wall clock, ms since the epoch */
} vf_cerr;

typedef enum { VF_TRANSPORT_AUTO, VF_TRANSPORT_CLASSIC, VF_TRANSPORT_URING } vf_transport;

/* What serve() was asked for, checked by fuse_napi.c before a session exists. */
typedef struct {
  vf_transport transport;
  const char *mount_dir;
  int container_fd, key_fd;
  vault_chain chain; /* the cipher chain (options.cipher, default "aes") */
  uint64_t data_offset, data_size, sector_size, first_tweak, tweak_step, max_request;
  int threads;
  bool read_only, async_dio, parallel_writes, direct_io;
  bool buffered_writes; /* with direct_io: writes through the host page cache, reads O_DIRECT */
  bool page_cache; /* the block file through the kernel's page cache, with writeback (fuse route) */
  bool allow_root; /* as an ordinary user: root may use the mount too (fusermount3 allow_other) */
  bool allow_discards; /* PUNCH_HOLE punches holes in the container (mount --allow-discards) */
  bool zero_sectors;   /* a stored all-zero sector reads as zeros (spec/format.md §8, vault format) */
  uint64_t protect_start, protect_end; /* hidden-volume protection (fuse_protect.c); end 0: none */
} vf_config;

struct vf_session {
  /* Configuration (immutable once the workers run). */
  char *mount_dir; /* realpath */
  int container_fd; /* our own dup, O_CLOEXEC */
  int io_fd;        /* what the data path reads: container_fd, or an O_DIRECT reopening of it */
  int wr_fd;        /* what it writes, and reads below VF_SMALL_READ: io_fd, or container_fd (buffered_writes; fuse_io.c) */
  bool direct_io;   /* io_fd is O_DIRECT */
  uint32_t io_size; /* container I/O unit: sector_size, or the O_DIRECT alignment where larger (fuse_io.c) */
  uint64_t data_offset;
  _Atomic uint64_t data_size; /* only grows, online (vault resize: fuse_napi.c grow_session) */
  uint32_t sector_size, sector_shift, lock_shift;
  uint64_t first_tweak, tweak_step;
  bool read_only, async_dio, parallel_writes, page_cache;
  bool allow_discards, zero_sectors; /* see vf_config */
  uint64_t protect_start, protect_end; /* see vf_config */
  _Atomic bool protect_tripped;        /* a write reached the protected range: read-only since */
  int nthreads;           /* worker slots: nclassic classic workers, then nrings queue threads */
  int nclassic, nrings;   /* nrings: 0 unless io_uring is tried (and after falling back) */
  vf_transport transport; /* the one in use: CLASSIC or URING */
  vf_transport asked;     /* what serve() was asked for */
  bool uring_offered;     /* INIT: the kernel offered FUSE_OVER_IO_URING and we accepted */
  char transport_note[256]; /* why this transport (stats().transportNote) */
  vault_chain chain; /* the XTS cipher chain (cipher_engine.h) */
  size_t key_len;    /* vault_chain_key_len(&chain): 64, 128 or 192 */
  uint8_t *key;      /* key_len bytes of locked memory */
  bool lock_io;   /* the I/O buffers are locked too (always as root; as a user, if RLIMIT_MEMLOCK allows) */
  uid_t owner_uid; /* who mounted: the file's owner, and who may use it (with root if allow_root) */
  gid_t owner_gid;
  bool unprivileged; /* euid != 0: mounted and unmounted through fusermount3 */
  bool allow_root;   /* unprivileged: mounted allow_other, requests of others than owner and root refused */
  uint32_t open_flags;
  uint32_t max_request; /* negotiated max_write and mount's max_read, <= VF_MAX_IO */

  /* FUSE connection. */
  int dev_fd;       /* the mounting descriptor */
  bool mounted;     /* JS thread: we mounted and have not seen it go */
  bool have_dev;
  unsigned dev_major, dev_minor; /* the mount's anonymous device: names it in mountinfo, fusectl */

  /* Data path. */
  pthread_mutex_t stripes[VF_STRIPES];
  pthread_mutex_t sync_lock;
  _Atomic uint64_t write_gen;  /* completed writes (incremented after their pwrite) */
  _Atomic uint64_t synced_gen; /* write_gen covered by the last successful fdatasync */
  pthread_mutex_t attr_lock;   /* times set through SETATTR */
  struct timespec times[2][3]; /* [root, file][atime, mtime, ctime] */
  struct timespec start;

  /* Lifecycle. */
  pthread_mutex_t life;
  pthread_cond_t life_cond;
  int running;         /* started workers not yet exited, plus serve()'s token while it starts them */
  bool init_done;
  int init_error;
  int rings_reported;  /* queue threads that have registered their entries (or failed to) */
  int ring_error;      /* the first registration failure */
  _Atomic bool stopping;
  bool failed;         /* a worker hit a fatal error */
  char message[256];   /* the first fatal error (wait()'s message) */
  char last_io_error[256]; /* the latest I/O error (stats().lastError) */
  _Atomic uint64_t container_errors[VF_CERR_KINDS]; /* failed container I/O by kind (fuse_io.c) */
  vf_cerr last_cerr;       /* the latest of them (under life) */
  vf_reason reason;    /* set when running reaches 0 */
  _Atomic bool torn_down;

  /* JS thread only. */
  bool mutexes_ready;
  napi_threadsafe_function tsfn;
  bool finished;        /* the tsfn callback ran: reason is final */
  napi_deferred *waiters;
  size_t nwaiters, capwaiters;
  int refs;             /* the External and the tsfn each hold one */
  bool cleanup_hook;    /* registered with napi_add_env_cleanup_hook */
  vf_session *live_prev, *live_next; /* in live_sessions while serving (see at_exit_unmount) */
  bool live;

  vf_worker workers[];
};

/* ------------------------------------------------------------------------------------------ */
/* fuse_io.c: sector I/O                                                                        */

uint64_t vf_now_ms(void);
void vf_count_add(_Atomic uint64_t *c, uint64_t n);
/* Records an I/O failure seen while serving (the worker keeps serving). */
void vf_io_error(vf_worker *w, const char *what, int err);
/* Records a failed container read/write/sync/punch at container offset `offset` (-1: none): counted
   by kind, kept as the latest, logged in lastError. Returns the errno its request answers: ENOSPC
   for a full host (ENOSPC, EDQUOT), EIO for anything else. */
int vf_container_error(vf_worker *w, const char *op, int err, int64_t offset);
/* Records a fatal failure of a worker (it exits). The first one is kept. */
void vf_fatal_error(vf_session *s, const char *what, int err);
/* Reopens the container O_DIRECT where the host allows, and picks io_size (fuse_io.c). */
bool vf_open_direct(vf_session *s);
/* Reads and decrypts sectors [first, first + n) into buf, which has room for their covering I/O
   units unless they are whole units. 0, EIO, or ENOSPC (vf_container_error). */
int vf_read_sectors(vf_worker *w, uint8_t *buf, uint64_t first, uint64_t n);
/* Writes `len` plaintext bytes at data-area offset `off` (in range, len > 0); `src` NULL means
   zeros, and `src` may be encrypted in place. 0 or an errno (vf_container_error). */
int vf_write_range(vf_worker *w, uint8_t *src, uint64_t off, size_t len);
/* A worker's data buffer: the covering I/O units of any read, RMW or zero range (VF_MAX_IO and one
   partial unit at each end). */
static inline size_t vf_data_len(const vf_session *s) { return VF_MAX_IO + 2 * (size_t)s->io_size; }
/* The worker's data buffer, made (locked if the session locks its I/O memory) on first use by an
   io_uring queue thread, whose aligned requests never need one; NULL (ENOMEM) if it cannot be. */
uint8_t *vf_worker_data(vf_worker *w);
/* Zeroes [off, end) of the data area (in range) with encrypted zeros, VF_MAX_IO at a time. 0 or EIO. */
int vf_zero_range(vf_worker *w, uint64_t off, uint64_t end);
/* Discards [off, end) (allow_discards): whole sectors become holes in the container, partial edge
   sectors encrypted zeros; encrypted zeros throughout where the host cannot punch. 0 or EIO. */
int vf_discard_range(vf_worker *w, uint64_t off, uint64_t end);
/* fdatasync unless every completed write is already covered by a successful one. 0 or an errno. */
int vf_sync_container(vf_session *s);

/* fuse_protect.c: hidden-volume protection. 0 when [off, off + len) may be written; EIO for the
   write that reaches the protected range (the session turns read-only), EROFS after it. */
int vf_protect_write(vf_worker *w, uint64_t off, uint64_t len);

/* ------------------------------------------------------------------------------------------ */
/* fuse_ops.c: one request, one reply, whatever the transport                                   */

typedef struct {
  const struct fuse_in_header *h;
  const uint8_t *arg;    /* the op's arguments: its fixed in-struct, or LOOKUP's name */
  size_t arglen;
  uint8_t *payload;      /* WRITE's data (page-aligned where the transport can), or NULL */
  size_t payload_len;
  uint8_t *out;          /* the transport's reply buffer (page-aligned, >= 4096 bytes): a READ of */
  size_t out_cap;        /* whole sectors that fits is decrypted straight into it */
} vf_req;

typedef struct {
  bool none;             /* FORGET, INTERRUPT …: send nothing */
  int err;               /* 0 or a positive errno: the reply is the header alone */
  const uint8_t *body;   /* otherwise the body: in req->out, or in the worker's buffer */
  size_t len;
} vf_reply;

void vf_dispatch(vf_worker *w, const vf_req *r, vf_reply *rep);
/* The transport sent INIT's reply (send_err 0) or failed to: serve() may go on. */
void vf_init_answered(vf_session *s, int err);

/* ------------------------------------------------------------------------------------------ */
/* fuse_classic.c: the classic transport                                                        */

/* Opens worker i's descriptor (a clone of s->dev_fd; worker 0 uses s->dev_fd itself). 0 or an errno. */
int vf_classic_open(vf_session *s, int i);
void *vf_classic_worker(void *arg);

/* ------------------------------------------------------------------------------------------ */
/* fuse_uring.c: the io_uring transport                                                         */

/* Whether FUSE over io_uring may be tried here (enable_uring is Y, io_uring allowed); why not. */
bool vf_uring_available(char *why, size_t cap);
/* The kernel's queue count: one per possible CPU. */
int vf_uring_queues(void);
/* Rings and entry buffers for the s->nrings queue threads (slots nclassic..), made before INIT is
   answered so that a failure can still fall back. 0 or an errno (why says what). */
int vf_uring_create(vf_session *s, char *why, size_t cap);
void *vf_ring_worker(void *arg);
/* After the worker has exited: the ring and its buffers (wiped). NULL-safe. */
void vf_ring_free(vf_worker *w);
/* Frees the worker's read ring (fuse_io.c), once its thread has ended. */
void vf_read_ring_free(vf_worker *w);

/* ------------------------------------------------------------------------------------------ */
/* fuse_mount.c                                                                                 */

bool vf_mount(napi_env env, vf_session *s);
/* Detaches our mount if it is still the one on mount_dir (never someone else's). */
void vf_unmount_if_ours(vf_session *s);
/* Aborts the FUSE connection through fusectl (a private fusectl mount if none is mounted). */
void vf_abort_connection(vf_session *s);

/* ------------------------------------------------------------------------------------------ */
/* fuse_user.c: running as an ordinary user                                                     */

/* Mounts s->mount_dir through fusermount3: the /dev/fuse descriptor it sends back, or -1 with
   what went wrong (fusermount3's own stderr included) in msg. */
int vf_fusermount_mount(vf_session *s, char *msg, size_t cap);
/* `fusermount3 -u -z -- dir`: whether it succeeded. */
bool vf_fusermount_unmount(const char *dir);
/* Whether the I/O buffers can be locked as well (RLIMIT_MEMLOCK), the key being locked already. */
bool vf_io_lock_fits(const vf_session *s);
/* Throws the failure to lock `what` (the key, its schedules): names RLIMIT_MEMLOCK when it is the
   cause, and what to do. */
void vf_throw_memlock(napi_env env, const char *what, int err);
/* Bytes of locked memory one io_uring queue thread's entries take (fuse_uring.c). */
size_t vf_uring_locked_bytes(const vf_session *s);

/* ------------------------------------------------------------------------------------------ */
/* fuse_session.c                                                                               */

/* A queue thread has registered its ring entries (err 0) or failed to. */
void vf_ring_registered(vf_session *s, int err);
/* A worker's last act: marks it exited and drops its count of s->running. */
void vf_worker_exit(vf_worker *w);
/* In live_sessions (see at_exit_unmount) / out of it. */
void vf_live_add(vf_session *s);

/* A session for `c` with its buffers, key and container, not yet mounted. NULL with the error
   thrown into `env`. */
vf_session *vf_session_new(napi_env env, const vf_config *c);
/* Mounts, starts the workers and waits for the kernel's INIT; throws into env and returns false
   on failure (the caller then tears down). */
bool vf_session_start(napi_env env, vf_session *s);
/* Drops one count of s->running; the last one out wakes the JS thread. */
void vf_running_put(vf_session *s);
void vf_teardown(vf_session *s);
void vf_session_unref(vf_session *s);
/* at exit(3): set once the process is exiting; workers then leave N-API alone */
extern atomic_bool vf_exiting;

#endif
