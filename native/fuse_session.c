/*
 * fuse_session.c: the life of one volume server session.
 *
 * serve() (fuse_napi.c) builds a session in named steps: vf_session_new() allocates it, opens the
 * mount point and the container (O_DIRECT where allowed), reads the key into locked pages and
 * gives every worker its XTS context and locked buffers; vf_session_start() mounts (mount(2) as
 * root, fusermount3 as a user: fuse_user.c), starts the workers and returns once INIT is answered.
 *
 * Secrets: the 64-byte key is read from a descriptor straight into locked pages (secure_mem), and
 * each worker has its own XTS context keyed from it. Request and data buffers hold plaintext, so
 * they are locked too, and wiped when the session ends.
 *
 * Ending: the workers exit on ENODEV (connection gone: unmounted, or aborted). vf_teardown()
 * unmounts (MNT_DETACH), gives the workers a moment to see ENODEV, then aborts the connection
 * (fusectl if mounted, else by waking the workers with a signal so they close their descriptors),
 * joins them and wipes everything. When the last worker exits, a threadsafe function wakes the JS
 * thread (fuse_napi.c), which tears down (if stop() has not) and resolves wait().
 */
#include "fuse_internal.h"
#include "napi_util.h"
#include "secure_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* ------------------------------------------------------------------------------------------ */
/* Workers                                                                                      */

static int wake_signal; /* a real-time signal with a no-op handler: interrupts a worker's read() */

static void wake_handler(int sig) { (void)sig; }

/* JS thread, once per process. 0 if no free real-time signal was found (stop then relies on the
   fusectl abort file). */
static void install_wake_signal(void) {
  static bool done;
  if (done) return;
  done = true;
  for (int sig = SIGRTMIN + 4; sig <= SIGRTMAX - 4; sig++) {
    struct sigaction old, sa;
    if (sigaction(sig, NULL, &old) != 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = wake_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read() returns EINTR */
    if (sigaction(sig, &sa, NULL) == 0) {
      wake_signal = sig;
      return;
    }
  }
}

/*
 * Sessions that are serving, for at_exit_unmount(): process.exit() and fatal exceptions end the
 * process through exit(3) without running N-API finalizers or env cleanup hooks, and would leave a
 * dead FUSE mount behind. (The key needs no wipe then: the kernel zeroes freed pages before reuse.)
 */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static vf_session *live_sessions;
atomic_bool vf_exiting; /* set by at_exit_unmount: workers then leave N-API alone */

static void at_exit_unmount(void) {
  atomic_store(&vf_exiting, true);
  pthread_mutex_lock(&live_lock);
  for (vf_session *s = live_sessions; s != NULL; s = s->live_next) {
    atomic_store(&s->stopping, true);
    vf_unmount_if_ours(s);
    /* Queue threads must not die holding a request of a live connection (see fuse_uring.c). */
    if (s->transport == VF_TRANSPORT_URING) vf_abort_connection(s);
  }
  pthread_mutex_unlock(&live_lock);
}

void vf_live_add(vf_session *s) {
  static bool registered;
  pthread_mutex_lock(&live_lock);
  if (!registered) registered = atexit(at_exit_unmount) == 0;
  s->live_prev = NULL;
  s->live_next = live_sessions;
  if (live_sessions != NULL) live_sessions->live_prev = s;
  live_sessions = s;
  s->live = true;
  pthread_mutex_unlock(&live_lock);
}

static void live_remove(vf_session *s) {
  pthread_mutex_lock(&live_lock);
  if (s->live) {
    if (s->live_prev != NULL) {
      s->live_prev->live_next = s->live_next;
    } else {
      live_sessions = s->live_next;
    }
    if (s->live_next != NULL) s->live_next->live_prev = s->live_prev;
    s->live = false;
  }
  pthread_mutex_unlock(&live_lock);
}

/* Drops one count of s->running; the last one out wakes the JS thread. */
void vf_running_put(vf_session *s) {
  bool last;
  pthread_mutex_lock(&s->life);
  last = --s->running == 0;
  if (last) {
    s->reason = s->failed ? VF_ERROR : atomic_load(&s->stopping) ? VF_STOPPED : VF_UNMOUNTED;
  }
  pthread_cond_broadcast(&s->life_cond);
  pthread_mutex_unlock(&s->life);
  if (last && !atomic_load(&vf_exiting)) {
    /* Queue the JS-side callback, then drop the only thread count: the tsfn finalizes after it. */
    (void)napi_call_threadsafe_function(s->tsfn, NULL, napi_tsfn_nonblocking);
    (void)napi_release_threadsafe_function(s->tsfn, napi_tsfn_release);
  }
}

void vf_worker_exit(vf_worker *w) {
  pthread_mutex_lock(&w->s->life);
  w->exited = true;
  pthread_mutex_unlock(&w->s->life);
  vf_running_put(w->s);
}

void vf_ring_registered(vf_session *s, int err) {
  pthread_mutex_lock(&s->life);
  s->rings_reported++;
  if (err != 0 && s->ring_error == 0) s->ring_error = err;
  pthread_cond_broadcast(&s->life_cond);
  pthread_mutex_unlock(&s->life);
}

/* ------------------------------------------------------------------------------------------ */
/* Teardown                                                                                     */

static void add_ms(struct timespec *t, long ms) {
  t->tv_sec += ms / 1000;
  t->tv_nsec += (ms % 1000) * 1000000L;
  if (t->tv_nsec >= 1000000000L) {
    t->tv_sec++;
    t->tv_nsec -= 1000000000L;
  }
}

/* Waits until no worker runs, at most `ms` (negative: forever). Returns true if none runs. */
static bool wait_workers(vf_session *s, long ms) {
  struct timespec until;
  bool done;
  clock_gettime(CLOCK_MONOTONIC, &until);
  add_ms(&until, ms < 0 ? 0 : ms);
  pthread_mutex_lock(&s->life);
  while (s->running > 0) {
    if (ms < 0) {
      pthread_cond_wait(&s->life_cond, &s->life);
    } else if (pthread_cond_timedwait(&s->life_cond, &s->life, &until) == ETIMEDOUT) {
      break;
    }
  }
  done = s->running == 0;
  pthread_mutex_unlock(&s->life);
  return done;
}

/* Makes every worker exit (they must already see s->stopping). */
static void kick_workers(vf_session *s) {
  while (!wait_workers(s, 20)) {
    pthread_mutex_lock(&s->life);
    for (int i = 0; i < s->nthreads; i++) {
      vf_worker *w = &s->workers[i];
      if (w->started && !w->exited && wake_signal != 0) pthread_kill(w->tid, wake_signal);
    }
    pthread_mutex_unlock(&s->life);
  }
}

/*
 * Ends the session: unmount, stop and join the workers, final sync, close the descriptors (which
 * aborts the connection if it still lives), wipe the key and the buffers. Idempotent; JS thread.
 * The workers may already have exited by themselves (unmounted from outside).
 */
void vf_teardown(vf_session *s) {
  if (atomic_load(&s->torn_down)) return;
  live_remove(s);
  atomic_store(&s->stopping, true);
  vf_unmount_if_ours(s);
  if (!wait_workers(s, VF_STOP_GRACE_MS)) {
    /* Still held open (a loop device attached to `volume`): abort the connection. */
    vf_abort_connection(s);
    kick_workers(s);
  }
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    if (w->started) pthread_join(w->tid, NULL);
    w->started = false;
  }
  if (s->container_fd >= 0) {
    if (!s->read_only && atomic_load(&s->synced_gen) < atomic_load(&s->write_gen)) (void)fdatasync(s->container_fd);
    if (s->io_fd != s->container_fd) close(s->io_fd);
    close(s->container_fd);
    s->container_fd = s->io_fd = s->wr_fd = -1;
  }
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    if (w->fd >= 0 && w->fd != s->dev_fd) close(w->fd);
    w->fd = -1;
    vault_cipher_ctx_free(w->xts);
    w->xts = NULL;
    vault_secure_free(w->req_mem, VF_REQ_MEM);
    w->req_mem = w->req = NULL;
    vault_secure_free(w->data, w->data_len);
    w->data = NULL;
    vf_ring_free(w);
    vf_read_ring_free(w);
  }
  if (s->dev_fd >= 0) close(s->dev_fd);
  s->dev_fd = -1;
  /* The mount may have outlived the connection (covered by another mount): try once more. */
  vf_unmount_if_ours(s);
  vault_secure_free(s->key, s->key_len);
  s->key = NULL;
  atomic_store(&s->torn_down, true);
}

static void session_free(vf_session *s) {
  if (s->mutexes_ready) {
    for (int i = 0; i < VF_STRIPES; i++) pthread_mutex_destroy(&s->stripes[i]);
    pthread_mutex_destroy(&s->sync_lock);
    pthread_mutex_destroy(&s->attr_lock);
    pthread_mutex_destroy(&s->life);
    pthread_cond_destroy(&s->life_cond);
  }
  free(s->waiters);
  free(s->mount_dir);
  free(s);
}

void vf_session_unref(vf_session *s) {
  if (--s->refs == 0) session_free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* Starting: a session is built in named steps, each of which throws into `env` on failure.     */

/* Cache-line aligned, so that each worker's counters sit on lines of their own. */
static vf_session *session_alloc(napi_env env, const vf_config *c, int nrings) {
  vf_session *s = NULL;
  size_t size = sizeof *s + (size_t)(c->threads + nrings) * sizeof(vf_worker);
  if (posix_memalign((void **)&s, 64, size) != 0) {
    vault_throw_errno(env, "posix_memalign", "serve", ENOMEM);
    return NULL;
  }
  memset(s, 0, size);
  s->container_fd = s->io_fd = s->wr_fd = -1;
  s->dev_fd = -1;
  s->nthreads = c->threads + nrings;
  s->nclassic = c->threads;
  s->nrings = nrings;
  s->asked = c->transport;
  s->refs = 1; /* the External, once it exists; the tsfn adds one */
  s->data_offset = c->data_offset;
  s->data_size = c->data_size;
  s->sector_size = s->io_size = (uint32_t)c->sector_size;
  s->sector_shift = (uint32_t)__builtin_ctzll(c->sector_size);
  s->lock_shift = s->sector_shift > VF_LOCK_SHIFT ? s->sector_shift : VF_LOCK_SHIFT;
  s->chain = c->chain;
  s->first_tweak = c->first_tweak;
  s->tweak_step = c->tweak_step;
  s->read_only = c->read_only;
  s->allow_root = c->allow_root;
  s->async_dio = c->async_dio;
  s->parallel_writes = c->parallel_writes;
  s->max_request = (uint32_t)c->max_request;
  s->page_cache = c->page_cache;
  s->allow_discards = c->allow_discards && !c->read_only;
  s->zero_sectors = c->zero_sectors;
  s->protect_start = c->protect_start;
  s->protect_end = c->protect_end;
  s->open_flags = c->page_cache ? FOPEN_KEEP_CACHE : FOPEN_DIRECT_IO | (c->parallel_writes ? FOPEN_PARALLEL_DIRECT_WRITES : 0);
  s->reason = VF_RUNNING;
  s->transport = VF_TRANSPORT_CLASSIC;
  for (int i = 0; i < s->nthreads; i++) s->workers[i].fd = -1;
  for (int i = 0; i < VF_STRIPES; i++) pthread_mutex_init(&s->stripes[i], NULL);
  pthread_mutex_init(&s->sync_lock, NULL);
  pthread_mutex_init(&s->attr_lock, NULL);
  pthread_mutex_init(&s->life, NULL);
  {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->life_cond, &ca);
    pthread_condattr_destroy(&ca);
  }
  s->mutexes_ready = true;
  clock_gettime(CLOCK_REALTIME, &s->start);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) s->times[i][j] = s->start;
  return s;
}

/* The mount point (resolved once: mount(2) and the bookkeeping use the same name) and our own
   descriptors of the container. */
static bool open_paths(napi_env env, vf_session *s, const vf_config *c) {
  char what[PATH_MAX + 64];
  struct stat st;
  int err;
  s->mount_dir = realpath(c->mount_dir, NULL);
  if (s->mount_dir == NULL) {
    snprintf(what, sizeof what, "mount point %s", c->mount_dir);
    vault_throw_errno(env, "realpath", what, errno);
    return false;
  }
  err = stat(s->mount_dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (err != 0) {
    snprintf(what, sizeof what, "mount point %s", s->mount_dir);
    vault_throw_errno(env, "stat", what, err);
    return false;
  }
  s->container_fd = fcntl(c->container_fd, F_DUPFD_CLOEXEC, 3);
  if (s->container_fd < 0) {
    vault_throw_errno(env, "fcntl", "duplicating options.containerFd", errno);
    return false;
  }
  s->io_fd = s->wr_fd = s->container_fd;
  if (c->direct_io) s->direct_io = vf_open_direct(s);
  if (s->direct_io && !c->buffered_writes) s->wr_fd = s->io_fd;
  return true;
}

/* The key: straight from the pipe into locked pages. */
static bool read_key(napi_env env, vf_session *s, int key_fd) {
  char what[128];
  size_t got;
  int err;
  s->key_len = vault_chain_key_len(&s->chain);
  s->key = vault_secure_alloc(s->key_len, &err);
  if (s->key == NULL) {
    vf_throw_memlock(env, "the key", err);
    return false;
  }
  err = vault_secure_read_fd(key_fd, s->key, s->key_len, &got);
  if (err == -1) {
    snprintf(what, sizeof what, "reading the key from fd %d: end of file after %zu of %zu bytes", key_fd, got,
             s->key_len);
    vault_throw_error(env, "ERR_VAULT_KEY_SHORT_READ", what);
    return false;
  } else if (err != 0) {
    snprintf(what, sizeof what, "reading the key from fd %d", key_fd);
    vault_throw_errno(env, "read", what, err);
    return false;
  }
  /* Each cipher's primary key against its secondary key (cipher_engine.h layout). */
  for (size_t i = 0; i < s->chain.n; i++)
    if (CRYPTO_memcmp(s->key + VAULT_CIPHER_KEY_LEN * i, s->key + VAULT_CIPHER_KEY_LEN * (s->chain.n + i), VAULT_CIPHER_KEY_LEN) == 0) {
      vault_throw_error(env, "ERR_VAULT_XTS_EQUAL_HALVES", "invalid XTS key: a cipher's two 32-byte keys are equal");
      return false;
    }
  return true;
}

/* A classic worker's two locked buffers (the request read from /dev/fuse, the reply's data): 0 or
   the errno of the allocation that failed. */
static int alloc_classic_buffers(vf_session *s, vf_worker *w) {
  int err = 0;
  w->req_mem = vault_secure_alloc_opt(VF_REQ_MEM, s->lock_io, &err);
  if (w->req_mem == NULL) return err;
  w->req = w->req_mem + VF_REQ_SKEW;
  w->data = vault_secure_alloc_opt(w->data_len, s->lock_io, &err);
  return w->data == NULL ? err : 0;
}

/* Per worker: a keyed XTS context and a classic worker's two locked buffers. While io_uring is
   planned, only classic worker 0 (INIT, then FORGET and INTERRUPT) gets its buffers now; the others
   get theirs if INIT falls back to classic (start_transport): 2 MiB each that io_uring would never
   touch. A queue thread's ring entries bring their own buffers, and its data buffer is made when an
   unaligned request first needs it (vf_worker_data). The contexts' key schedules live in
   libgcrypt's locked pool (or, for Kuznyechik, vault's locked pages): nothing to lock after them. */
static bool prepare_workers(napi_env env, vf_session *s) {
  char what[256];
  int err = 0;
  err = vault_cipher_prepare(&s->chain, (size_t)s->nthreads); /* libgcrypt's locked pool first: vf_io_lock_fits counts it */
  if (err != 0) {
    if (err == -2) vf_throw_memlock(env, "the key schedules (libgcrypt's secure pool)", ENOMEM);
    else vault_throw_error(env, "ERR_VAULT_CIPHER", vault_cipher_error());
    return false;
  }
  s->lock_io = vf_io_lock_fits(s);
  for (int i = 0; i < s->nthreads; i++) {
    vf_worker *w = &s->workers[i];
    w->s = s;
    w->data_len = vf_data_len(s);
    atomic_store(&w->c.last_io_ms, vf_now_ms());
    w->xts = vault_cipher_ctx_new(&s->chain, s->key);
    if (w->xts == NULL) {
      snprintf(what, sizeof what, "cannot set up an XTS context: %s", vault_cipher_error());
      vault_throw_error(env, "ERR_VAULT_CIPHER", what);
      return false;
    }
    if (!vault_cipher_ctx_locked(w->xts)) { /* sized for them, unless this process used libgcrypt before */
      snprintf(what, sizeof what, "cannot keep worker %d's key schedules in locked memory: %s; serve with fewer threads", i,
               vault_cipher_error());
      vault_throw_error(env, "ERR_VAULT_MEMLOCK", what);
      return false;
    }
    if (i < s->nclassic && (s->nrings == 0 || i == 0)) err = alloc_classic_buffers(s, w);
    if (err != 0) {
      vf_throw_memlock(env, "the I/O buffers", err);
      return false;
    }
  }
  return true;
}

/* ERR_VAULT_URING_UNAVAILABLE: io_uring was asked for and cannot be had; says how to get it. */
static void throw_uring_unavailable(napi_env env, const char *why) {
  char msg[512];
  snprintf(msg, sizeof msg,
           "FUSE over io_uring is not available: %s. Root can switch it on with `vault uring enable` (or "
           "`echo Y > /sys/module/fuse/parameters/enable_uring`); or set VAULT_FUSE_TRANSPORT=auto or classic",
           why);
  vault_throw_error(env, "ERR_VAULT_URING_UNAVAILABLE", msg);
}

/*
 * How many io_uring queue threads to prepare. None for 'classic', nor where io_uring is not
 * available ('auto' notes why and serves classic; a forced 'io_uring' fails). The last word is
 * INIT's: the kernel may still not offer it (see start_transport).
 */
static bool plan_rings(napi_env env, const vf_config *c, int *nrings, char *note, size_t cap) {
  char why[200];
  *nrings = 0;
  if (c->transport == VF_TRANSPORT_CLASSIC) {
    snprintf(note, cap, "classic: asked for");
    return true;
  }
  if (!vf_uring_available(why, sizeof why)) {
    if (c->transport == VF_TRANSPORT_URING) {
      throw_uring_unavailable(env, why);
      return false;
    }
    snprintf(note, cap, "classic: %s", why);
    return true;
  }
  /* options.threads queue threads, spread evenly over the queues, at least one each. */
  *nrings = vf_uring_queues() * (c->threads > vf_uring_queues() ? c->threads / vf_uring_queues() : 1);
  return true;
}

/* The queue threads' rings and buffers; 'auto' falls back to classic if they cannot be made. */
static bool prepare_rings(napi_env env, vf_session *s) {
  char why[200];
  int err;
  if (s->nrings == 0) return true;
  err = vf_uring_create(s, why, sizeof why);
  if (err == 0) return true;
  if (s->asked == VF_TRANSPORT_URING) {
    throw_uring_unavailable(env, why);
    return false;
  }
  for (int i = s->nclassic; i < s->nthreads; i++) vf_ring_free(&s->workers[i]);
  s->nrings = 0;
  snprintf(s->transport_note, sizeof s->transport_note, "classic: %s", why);
  return true;
}

vf_session *vf_session_new(napi_env env, const vf_config *c) {
  vf_session *s;
  char note[sizeof s->transport_note] = "";
  int nrings;
  if (!plan_rings(env, c, &nrings, note, sizeof note)) return NULL;
  s = session_alloc(env, c, nrings);
  if (s == NULL) return NULL;
  memcpy(s->transport_note, note, sizeof note);
  if (!open_paths(env, s, c) || !read_key(env, s, c->key_fd) || !prepare_workers(env, s) || !prepare_rings(env, s))
    goto fail;
  install_wake_signal();
  return s; /* /dev/fuse: opened by vf_mount(), or by fusermount3 */
fail:
  vf_teardown(s);
  vf_session_unref(s);
  return NULL;
}

/* Starts workers [from, to) running fn; classic ones get their /dev/fuse descriptors first. They
   block every signal but the wake-up one: the JS thread keeps handling SIGINT etc. */
static bool start_threads(napi_env env, vf_session *s, int from, int to, void *(*fn)(void *)) {
  sigset_t all, old;
  int err;
  for (int i = from; i < to && fn == vf_classic_worker; i++) {
    err = vf_classic_open(s, i);
    if (err != 0) {
      vault_throw_errno(env, "ioctl", "cloning /dev/fuse (FUSE_DEV_IOC_CLONE)", err);
      return false;
    }
  }
  sigfillset(&all);
  if (wake_signal != 0) sigdelset(&all, wake_signal);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = from; i < to; i++) {
    vf_worker *w = &s->workers[i];
    pthread_mutex_lock(&s->life);
    s->running++;
    pthread_mutex_unlock(&s->life);
    err = pthread_create(&w->tid, NULL, fn, w);
    if (err != 0) {
      pthread_mutex_lock(&s->life);
      s->running--;
      pthread_mutex_unlock(&s->life);
      pthread_sigmask(SIG_SETMASK, &old, NULL);
      vault_throw_errno(env, "pthread_create", "starting FUSE workers", err);
      return false;
    }
    w->started = true;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return true;
}
/* Waits until the kernel's INIT has been answered (or every worker has died). */
static bool wait_init(napi_env env, vf_session *s) {
  char what[PATH_MAX + 320];
  struct timespec until;
  bool ok;
  int err;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += VF_INIT_TIMEOUT_S;
  pthread_mutex_lock(&s->life);
  while (!s->init_done && s->running > 1) {
    if (pthread_cond_timedwait(&s->life_cond, &s->life, &until) == ETIMEDOUT) break;
  }
  ok = s->init_done && s->init_error == 0;
  err = s->init_done ? s->init_error : s->failed ? EIO : ETIMEDOUT;
  snprintf(what, sizeof what, "FUSE handshake on %s%s%s", s->mount_dir, s->failed ? ": " : "",
           s->failed ? s->message : "");
  pthread_mutex_unlock(&s->life);
  if (!ok) vault_throw_errno(env, "read", what, err);
  return ok;
}

/* Waits until every queue thread has registered its entries: 0 or the first failure. */
static int wait_rings(vf_session *s) {
  struct timespec until;
  int err;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += VF_URING_REGISTER_TIMEOUT_S;
  pthread_mutex_lock(&s->life);
  while (s->rings_reported < s->nrings) {
    if (pthread_cond_timedwait(&s->life_cond, &s->life, &until) == ETIMEDOUT) break;
  }
  err = s->rings_reported < s->nrings ? ETIMEDOUT : s->ring_error;
  pthread_mutex_unlock(&s->life);
  return err;
}

/*
 * After INIT: the io_uring queue threads if INIT accepted io_uring, else the rest of the classic
 * workers. Once INIT has accepted io_uring there is no way back: the kernel holds every request
 * until each queue has registered, so a failed registration fails serve() whatever was asked for.
 * Otherwise a forced io_uring that did not come about is an error; 'auto' serves classic and notes
 * why.
 */
static bool start_transport(napi_env env, vf_session *s) {
  char why[200];
  int err = EOPNOTSUPP;
  if (s->nrings > 0) {
    snprintf(why, sizeof why, "the kernel did not offer FUSE_OVER_IO_URING at INIT");
    if (s->uring_offered) {
      if (!start_threads(env, s, s->nclassic, s->nthreads, vf_ring_worker)) return false;
      err = wait_rings(s);
      if (err != 0) {
        snprintf(why, sizeof why, "registering the io_uring queues failed: %s", strerror(err));
        throw_uring_unavailable(env, why);
        return false;
      }
    }
    if (err == 0) {
      s->transport = VF_TRANSPORT_URING;
      snprintf(s->transport_note, sizeof s->transport_note, "io_uring: %s (%d queues, %d threads)",
               s->asked == VF_TRANSPORT_URING ? "asked for" : "enable_uring is Y", vf_uring_queues(), s->nrings);
      return true;
    }
    if (s->asked == VF_TRANSPORT_URING) {
      throw_uring_unavailable(env, why);
      return false;
    }
    snprintf(s->transport_note, sizeof s->transport_note, "classic: %s", why);
    /* The classic workers that io_uring would not have needed (prepare_workers). */
    for (int i = 1; i < s->nclassic; i++) {
      err = alloc_classic_buffers(s, &s->workers[i]);
      if (err != 0) {
        vf_throw_memlock(env, "the I/O buffers", err);
        return false;
      }
    }
  }
  return start_threads(env, s, s->nrings > 0 ? 1 : s->nclassic, s->nclassic, vf_classic_worker);
}

bool vf_session_start(napi_env env, vf_session *s) {
  return vf_mount(env, s) && start_threads(env, s, 0, s->nrings > 0 ? 1 : s->nclassic, vf_classic_worker) &&
         wait_init(env, s) && start_transport(env, s);
}
