/*
 * fuse_napi.c: the volume server's N-API glue. serve(options) checks the options, builds a session
 * (fuse_session.c) and returns it as a type-tagged External; wait(session) resolves when it has
 * ended; stop(session) ends it; stats(session) reads its counters. See src/server/fuse-addon.ts
 * for the JS-side contract.
 */
#include "fuse_internal.h"
#include "fuse_server.h"
#include "napi_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK

static const napi_type_tag SESSION_TAG = {0x7661756c74667573ULL, 0x6573657373696f6eULL};

static bool session_unwrap(napi_env env, napi_callback_info info, vf_session **out) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_get_cb_info");
    return false;
  }
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, argv[0], &SESSION_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &p) != napi_ok) {
    vault_throw_type_error(env, "expected a volume server session");
    return false;
  }
  *out = p;
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* JS side of the lifecycle                                                                     */

static napi_value make_result(napi_env env, vf_session *s) {
  static const char *const names[] = {"running", "unmounted", "stopped", "error"};
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_string_utf8(env, names[s->reason], NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, obj, "reason", v) != napi_ok)
    return NULL;
  if (s->reason == VF_ERROR && (napi_create_string_utf8(env, s->message, NAPI_AUTO_LENGTH, &v) != napi_ok ||
                                napi_set_named_property(env, obj, "message", v) != napi_ok))
    return NULL;
  return obj;
}

/* JS thread: the last worker has exited. */
static void tsfn_call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  vf_session *s = context;
  napi_value result;
  (void)js_cb;
  (void)data;
  if (env == NULL) return; /* the environment is going away */
  vf_teardown(s);              /* no-op when stop() already did it */
  s->finished = true;
  result = make_result(env, s);
  for (size_t i = 0; i < s->nwaiters; i++) {
    if (result != NULL) {
      (void)napi_resolve_deferred(env, s->waiters[i], result);
    } else {
      napi_value e = NULL;
      napi_value m;
      if (napi_create_string_utf8(env, "vault_native: cannot build the volume server result", NAPI_AUTO_LENGTH, &m) == napi_ok)
        (void)napi_create_error(env, NULL, m, &e);
      (void)napi_reject_deferred(env, s->waiters[i], e);
    }
  }
  s->nwaiters = 0;
}

/* The environment is going away (process exit, worker termination) while the session may still
   serve: unmount and wipe rather than leave a dead mount and the key behind. */
static void env_cleanup(void *arg) {
  vf_session *s = arg;
  s->cleanup_hook = false; /* a hook runs once */
  vf_teardown(s);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  vf_session *s = data;
  (void)env;
  (void)hint;
  s->tsfn = NULL;
  vf_session_unref(s);
}

static void session_finalize(napi_env env, void *data, void *hint) {
  vf_session *s = data;
  (void)hint;
  vf_teardown(s); /* a dropped session stops serving */
  if (s->cleanup_hook) {
    s->cleanup_hook = false;
    (void)napi_remove_env_cleanup_hook(env, env_cleanup, s);
  }
  vf_session_unref(s);
}

/* ------------------------------------------------------------------------------------------ */
/* serve(opts): session                                                                         */

/* options.transport: 'auto' (default), 'classic' or 'io_uring'. */
static bool parse_transport(napi_env env, napi_value o, vf_transport *out) {
  static const char *const names[] = {"auto", "classic", "io_uring"};
  char buf[16];
  napi_value v;
  bool present;
  size_t len = 0;
  if (!vault_opt_prop(env, o, "transport", &v, &present)) return false;
  *out = VF_TRANSPORT_AUTO;
  if (!present) return true;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) == napi_ok)
    for (int i = 0; i < 3; i++)
      if (strcmp(buf, names[i]) == 0) {
        *out = (vf_transport)i;
        return true;
      }
  vault_throw_type_error(env, "options.transport must be 'auto', 'classic' or 'io_uring'");
  return false;
}

/* options.cipher: the XTS cipher chain in encryption order ("aes" when absent; cipher_engine.h). */
static bool parse_chain(napi_env env, napi_value o, vault_chain *out) {
  napi_value v;
  bool present;
  if (!vault_opt_prop(env, o, "cipher", &v, &present)) return false;
  if (!present) return vault_chain_parse("aes", out) == 0;
  return vault_arg_chain(env, v, "options.cipher", out);
}

/* Reads and checks serve()'s options; the container must be readable (and writable unless
   read-only), a regular file or block device, and hold the whole data area. */
static bool parse_config(napi_env env, napi_value o, vf_config *c, char *dir, size_t dircap) {
  uint64_t container_fd, key_fd, threads, last, container_size = 0;
  struct stat st;
  int fl;
  if (!vault_opt_string(env, o, "mountDir", dir, dircap) ||
      !vault_opt_int(env, o, "containerFd", true, 0, INT32_MAX, &container_fd) ||
      !vault_opt_int(env, o, "keyFd", true, 0, INT32_MAX, &key_fd) ||
      !vault_opt_int(env, o, "dataOffset", true, 0, 9007199254740991.0, &c->data_offset) ||
      !vault_opt_int(env, o, "dataSize", true, 0, 9007199254740991.0, &c->data_size) ||
      !vault_opt_int(env, o, "sectorSize", true, 0, VF_MAX_SECTOR, &c->sector_size) ||
      !vault_opt_u64(env, o, "firstTweak", 0, &c->first_tweak) || !vault_opt_u64(env, o, "tweakStep", 1, &c->tweak_step) ||
      !vault_opt_bool(env, o, "readOnly", false, &c->read_only) ||
      !vault_opt_int(env, o, "threads", false, VF_DEFAULT_THREADS, VF_MAX_THREADS, &threads) ||
      !vault_opt_bool(env, o, "asyncDio", true, &c->async_dio) ||
      !vault_opt_bool(env, o, "parallelDirectWrites", true, &c->parallel_writes) ||
      !vault_opt_bool(env, o, "directIo", true, &c->direct_io) ||
      !vault_opt_bool(env, o, "bufferedWrites", true, &c->buffered_writes) ||
      !vault_opt_bool(env, o, "allowRoot", false, &c->allow_root) ||
      !vault_opt_bool(env, o, "pageCache", false, &c->page_cache) ||
      !vault_opt_bool(env, o, "allowDiscards", false, &c->allow_discards) ||
      !vault_opt_bool(env, o, "zeroSectors", false, &c->zero_sectors) ||
      !vault_opt_int(env, o, "protectStart", false, 0, 9007199254740991.0, &c->protect_start) ||
      !vault_opt_int(env, o, "protectEnd", false, 0, 9007199254740991.0, &c->protect_end) ||
      !vault_opt_int(env, o, "maxRequest", false, VF_MAX_IO, VF_MAX_IO, &c->max_request))
    return false;
  if (!parse_transport(env, o, &c->transport) || !parse_chain(env, o, &c->chain)) return false;
  c->mount_dir = dir;
  c->container_fd = (int)container_fd;
  c->key_fd = (int)key_fd;
  c->threads = (int)threads;
  if (c->sector_size < VF_MIN_SECTOR || (c->sector_size & (c->sector_size - 1)) != 0) {
    vault_throw_range_error(env, "options.sectorSize must be a power of two in [512, 65536]");
    return false;
  }
  if (c->data_size == 0 || c->data_size % c->sector_size != 0) {
    vault_throw_range_error(env, "options.dataSize must be a positive multiple of sectorSize");
    return false;
  }
  if (c->protect_end != 0 && (c->protect_start >= c->protect_end || c->protect_end > c->data_size)) {
    vault_throw_range_error(env, "options.protectStart/protectEnd must be a non-empty range inside the data area");
    return false;
  }
  if (c->data_offset + c->data_size > 9007199254740991.0) {
    vault_throw_range_error(env, "options.dataOffset + dataSize must stay below 2^53");
    return false;
  }
  if (c->max_request < 65536 || (c->max_request & (c->max_request - 1)) != 0) {
    vault_throw_range_error(env, "options.maxRequest must be a power of two in [65536, 1048576]");
    return false;
  }
  if (threads < 1) {
    vault_throw_range_error(env, "options.threads must be in [1, 64]");
    return false;
  }
  if (__builtin_mul_overflow(c->data_size / c->sector_size - 1, c->tweak_step, &last) ||
      __builtin_add_overflow(last, c->first_tweak, &last)) {
    vault_throw_range_error(env, "firstTweak + (sectors - 1) * tweakStep exceeds 2^64 - 1");
    return false;
  }
  if (fstat(c->container_fd, &st) != 0) {
    vault_throw_errno(env, "fstat", "options.containerFd", errno);
    return false;
  }
  fl = fcntl(c->container_fd, F_GETFL);
  if (fl < 0) {
    vault_throw_errno(env, "fcntl", "options.containerFd", errno);
    return false;
  }
  if ((fl & O_ACCMODE) == O_WRONLY || (!c->read_only && (fl & O_ACCMODE) != O_RDWR)) {
    vault_throw_errno(env, "fcntl", "options.containerFd is not open for reading and writing", EBADF);
    return false;
  }
  /* A device's size comes from BLKGETSIZE64 (st_size is 0 for devices). Anything else (a
     character device, a FIFO, a socket) is refused before a byte is read or written. */
  if (S_ISREG(st.st_mode)) {
    container_size = (uint64_t)st.st_size;
  } else if (!S_ISBLK(st.st_mode)) {
    vault_throw_errno(env, "fstat", "options.containerFd is not a regular file or block device", EINVAL);
    return false;
  } else if (ioctl(c->container_fd, BLKGETSIZE64, &container_size) != 0) {
    vault_throw_errno(env, "ioctl(BLKGETSIZE64)", "options.containerFd", errno);
    return false;
  }
  if (container_size < c->data_offset + c->data_size) {
    vault_throw_error(env, "ERR_VAULT_CONTAINER_SHORT", "the container is shorter than dataOffset + dataSize");
    return false;
  }
  return true;
}

/* The threadsafe function that tells the JS thread the last worker has gone. */
static bool create_tsfn(napi_env env, vf_session *s) {
  napi_value name;
  if (napi_create_string_utf8(env, "vault:fuse", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, s, tsfn_finalize, s, tsfn_call_js, &s->tsfn) !=
          napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_threadsafe_function");
    return false;
  }
  s->refs++;
  s->running = 1; /* serve()'s token: the tsfn fires only once this and every worker are gone */
  return true;
}

static napi_value serve(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], ext;
  napi_valuetype t;
  char dir[PATH_MAX];
  vf_config c;
  vf_session *s;

  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object) {
    vault_throw_type_error(env, "serve(options): options must be an object");
    return NULL;
  }
  memset(&c, 0, sizeof c);
  if (!parse_config(env, argv[0], &c, dir, sizeof dir)) return NULL;
  s = vf_session_new(env, &c);
  if (s == NULL) return NULL;
  if (!create_tsfn(env, s)) {
    vf_teardown(s);
    vf_session_unref(s);
    return NULL;
  }
  if (!vf_session_start(env, s)) {
    /* Drop serve()'s token first (teardown waits for the running count to reach 0), then unmount,
       stop whatever started and wipe. The last count out releases the tsfn, whose finalizer drops
       the other reference and frees the session. */
    vf_running_put(s);
    vf_teardown(s);
    vf_session_unref(s);
    return NULL;
  }
  vf_running_put(s); /* drop serve()'s token */
  if (napi_create_external(env, s, session_finalize, NULL, &ext) != napi_ok ||
      napi_type_tag_object(env, ext, &SESSION_TAG) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_external");
    /* Without an External, nothing will call stop(): do it now. */
    vf_teardown(s);
    vf_session_unref(s);
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, env_cleanup, s) == napi_ok) s->cleanup_hook = true;
  return ext;
}

/* ------------------------------------------------------------------------------------------ */
/* wait / stop / stats                                                                          */

static napi_value wait_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  napi_value promise, result;
  napi_deferred d;
  if (!session_unwrap(env, info, &s)) return NULL;
  CHECK(napi_create_promise(env, &d, &promise));
  if (s->finished) {
    result = make_result(env, s);
    if (result == NULL) {
      vault_throw_napi_failure(env, ADDON_NAME, "make_result");
      return NULL;
    }
    CHECK(napi_resolve_deferred(env, d, result));
    return promise;
  }
  if (s->nwaiters == s->capwaiters) {
    size_t cap = s->capwaiters ? s->capwaiters * 2 : 4;
    napi_deferred *p = realloc(s->waiters, cap * sizeof *p);
    if (p == NULL) {
      vault_throw_errno(env, "realloc", "wait", ENOMEM);
      return NULL;
    }
    s->waiters = p;
    s->capwaiters = cap;
  }
  s->waiters[s->nwaiters++] = d;
  return promise;
}

static napi_value stop_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  if (!session_unwrap(env, info, &s)) return NULL;
  vf_teardown(s);
  return NULL;
}

static bool set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok;
}

/* stats().containerErrors {eio, enospc, erofs, other} and, once one failed, lastContainerError
   {op, errno, offset, atMs} (offset null for a sync). */
static bool container_errors(napi_env env, vf_session *s, napi_value obj) {
  static const char *const names[VF_CERR_KINDS] = {"eio", "enospc", "erofs", "other"};
  napi_value kinds, last, v;
  vf_cerr c;
  if (napi_create_object(env, &kinds) != napi_ok) return false;
  for (int i = 0; i < VF_CERR_KINDS; i++)
    if (!set_num(env, kinds, names[i], (double)atomic_load(&s->container_errors[i]))) return false;
  if (napi_set_named_property(env, obj, "containerErrors", kinds) != napi_ok) return false;
  pthread_mutex_lock(&s->life);
  c = s->last_cerr;
  pthread_mutex_unlock(&s->life);
  if (c.op == NULL) return true;
  if (napi_create_object(env, &last) != napi_ok || napi_create_string_utf8(env, c.op, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, last, "op", v) != napi_ok) return false;
  {
    const char *name = strerrorname_np(c.err);
    char num[16];
    if (name == NULL) {
      snprintf(num, sizeof num, "E%d", c.err);
      name = num;
    }
    if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_named_property(env, last, "errno", v) != napi_ok) return false;
  }
  if (c.offset < 0 ? napi_get_null(env, &v) != napi_ok || napi_set_named_property(env, last, "offset", v) != napi_ok
                   : !set_num(env, last, "offset", (double)c.offset))
    return false;
  return set_num(env, last, "atMs", (double)c.at_ms) && napi_set_named_property(env, obj, "lastContainerError", last) == napi_ok;
}

static napi_value stats_session(napi_env env, napi_callback_info info) {
  vf_session *s;
  napi_value obj, str;
  uint64_t reads = 0, writes = 0, br = 0, bw = 0, errors = 0, last = 0;
  char last_error[256];
  if (!session_unwrap(env, info, &s)) return NULL;
  for (int i = 0; i < s->nthreads; i++) {
    vf_counters *c = &s->workers[i].c;
    uint64_t l = atomic_load_explicit(&c->last_io_ms, memory_order_relaxed);
    reads += atomic_load_explicit(&c->reads, memory_order_relaxed);
    writes += atomic_load_explicit(&c->writes, memory_order_relaxed);
    br += atomic_load_explicit(&c->bytes_read, memory_order_relaxed);
    bw += atomic_load_explicit(&c->bytes_written, memory_order_relaxed);
    errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
    if (l > last) last = l;
  }
  pthread_mutex_lock(&s->life);
  memcpy(last_error, s->last_io_error, sizeof last_error);
  pthread_mutex_unlock(&s->life);
  CHECK(napi_create_object(env, &obj));
  if (!set_num(env, obj, "lastIoMs", (double)last) || !set_num(env, obj, "reads", (double)reads) ||
      !set_num(env, obj, "writes", (double)writes) || !set_num(env, obj, "bytesRead", (double)br) ||
      !set_num(env, obj, "bytesWritten", (double)bw) || !set_num(env, obj, "errors", (double)errors)) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_set_named_property");
    return NULL;
  }
  {
    napi_value b, tr;
    CHECK(napi_get_boolean(env, s->direct_io, &b));
    CHECK(napi_set_named_property(env, obj, "directIo", b));
    CHECK(napi_get_boolean(env, s->wr_fd != s->io_fd, &b));
    CHECK(napi_set_named_property(env, obj, "bufferedWrites", b));
    CHECK(napi_create_uint32(env, s->io_size, &b));
    CHECK(napi_set_named_property(env, obj, "ioUnit", b));
    CHECK(napi_get_boolean(env, s->lock_io, &b));
    CHECK(napi_set_named_property(env, obj, "ioBuffersLocked", b));
    CHECK(napi_get_boolean(env, atomic_load(&s->protect_tripped), &b));
    CHECK(napi_set_named_property(env, obj, "protectionTripped", b));
    CHECK(napi_create_string_utf8(env, s->transport == VF_TRANSPORT_URING ? "io_uring" : "classic", NAPI_AUTO_LENGTH, &tr));
    CHECK(napi_set_named_property(env, obj, "transport", tr));
    CHECK(napi_create_string_utf8(env, s->transport_note, NAPI_AUTO_LENGTH, &tr));
    CHECK(napi_set_named_property(env, obj, "transportNote", tr));
  }
  if (last_error[0] != '\0') {
    CHECK(napi_create_string_utf8(env, last_error, NAPI_AUTO_LENGTH, &str));
    CHECK(napi_set_named_property(env, obj, "lastError", str));
  }
  if (!container_errors(env, s, obj)) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_set_named_property");
    return NULL;
  }
  return obj;
}

/*
 * grow(session, dataSize): the container grew online (vault resize, spec/format.md §12). The new
 * size must be larger, a whole number of sectors (of I/O units, fuse_io.c, where those are wider),
 * inside the container file and within the tweak range; the file's attributes are then invalidated in the kernel (FUSE_NOTIFY_INVAL_INODE, offset
 * -1: attributes only), so that the next stat() asks GETATTR and sees the new size, which
 * LOOP_SET_CAPACITY then reads. Never shrinks: data a loop device or a filesystem may still use
 * must stay reachable.
 */
static napi_value grow_session(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool tagged = false;
  void *p = NULL;
  double want;
  uint64_t size, last, container_size;
  struct stat st;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_check_object_type_tag(env, argv[0], &SESSION_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &p) != napi_ok || napi_get_value_double(env, argv[1], &want) != napi_ok) {
    vault_throw_type_error(env, "expected a volume server session and a size");
    return NULL;
  }
  vf_session *s = p;
  if (!(want > 0 && want <= 9007199254740991.0) || (uint64_t)want != want) {
    vault_throw_range_error(env, "dataSize must be a positive integer below 2^53");
    return NULL;
  }
  size = (uint64_t)want;
  if (size < s->data_size || size % s->io_size != 0) {
    vault_throw_range_error(env, s->io_size == s->sector_size ? "dataSize must be a multiple of sectorSize, not below the current size"
                                                               : "dataSize must be a multiple of the container's direct-I/O alignment, not below the current size");
    return NULL;
  }
  if (__builtin_mul_overflow(size / s->sector_size - 1, s->tweak_step, &last) ||
      __builtin_add_overflow(last, s->first_tweak, &last)) {
    vault_throw_range_error(env, "firstTweak + (sectors - 1) * tweakStep exceeds 2^64 - 1");
    return NULL;
  }
  if (fstat(s->container_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    vault_throw_errno(env, "fstat", "only a regular container file grows online", S_ISREG(st.st_mode) ? errno : EINVAL);
    return NULL;
  }
  container_size = (uint64_t)st.st_size;
  if (container_size < s->data_offset + size) {
    vault_throw_error(env, "ERR_VAULT_CONTAINER_SHORT", "the container is shorter than dataOffset + dataSize");
    return NULL;
  }
  atomic_store(&s->data_size, size);
  {
    struct {
      struct fuse_out_header h;
      struct fuse_notify_inval_inode_out n;
    } msg;
    memset(&msg, 0, sizeof msg);
    msg.h.len = sizeof msg;
    msg.h.error = FUSE_NOTIFY_INVAL_INODE;
    msg.n.ino = VF_FILE_ID;
    msg.n.off = -1;
    if (write(s->dev_fd, &msg, sizeof msg) != (ssize_t)sizeof msg) {
      vault_throw_errno(env, "write", "FUSE_NOTIFY_INVAL_INODE", errno);
      return NULL;
    }
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */

napi_value vault_fuse_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"serve", NULL, serve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"wait", NULL, wait_session, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stop", NULL, stop_session, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, stats_session, NULL, NULL, NULL, napi_enumerable, NULL},
      {"grow", NULL, grow_session, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}