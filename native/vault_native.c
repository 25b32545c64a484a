/*
 * vault_native: the little native code vault cannot do without.
 *
 *  - Key handles. Key bytes live in their own mmap'ed pages, mlock'ed (never written to swap) and
 *    MADV_DONTDUMP (never in a core dump), wiped with OPENSSL_cleanse before they are unmapped
 *    (secure_mem.c). JS only ever sees an opaque, type-tagged External pointing at them.
 *  - Batched XTS, in place, over a cipher chain (cipher_engine.c, over libgcrypt: AES and
 *    VeraCrypt's other ciphers and cascades; shared with the volume server): one call covers many
 *    sectors, synchronously or on the libuv threadpool.
 *  - Syscalls Node does not expose (sys_napi.c): prctl(PR_SET_DUMPABLE), flock, pipe2, BLKDISCARD, LOOP_CONFIGURE, and
 *    openat, renameat2 and unlinkat relative to a directory descriptor (so that a path in a
 *    directory another user can write is walked once, not again at every step). (Not mlockall: in a
 *    Node process V8 releases pages with madvise(MADV_DONTNEED), which fails on locked memory and
 *    aborts the process.)
 *  - A volume's filesystem type through libblkid, as `blkid -p` would say it (fs_napi.c).
 *
 * Threading: everything runs on the JS thread except xts_run(), which async jobs run on threadpool
 * threads. A job touches only its own buffer, its own XTS context and the key bytes, and the key
 * bytes are not wiped while key->inflight > 0 (see key_dispose / xts_complete).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, strerrorname_np, renameat2 */
#endif
/* Type tags (napi_type_tag_object on Externals) need N-API 8; Node 20 provides 9. */
#define NAPI_VERSION 8

#include "unit_hash.h"
#include "kdf.h"
#include "fido2.h"
#include "secure_mem.h"
#include "napi_util.h"
#include "cipher_engine.h"
#include "fuse_server.h"
#include "tc_legacy_napi.h"
#include "tpm2_napi.h"
#include "sys_napi.h"
#include "fs_napi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node_api.h>
#include <openssl/crypto.h>

/* Key handles are for keys; the cap only stops nonsense lengths from pinning lots of memory. */

#define KEY_MAX_LEN 65536

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                       */

/* vault_throw_* and the argument helpers live in napi_util.c. A failed N-API call throws and
   leaves through `label`. */
#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK
#define CHECK_GOTO VAULT_CHECK_GOTO

/* ------------------------------------------------------------------------------------------ */
/* Key handles                                                                                  */

typedef struct {
  uint8_t *mem;      /* vault_secure_alloc(len): locked whole pages; NULL once wiped */
  size_t len;        /* key bytes at the start of mem */
  bool disposed;     /* JS called dispose(): refuse new work */
  uint32_t inflight; /* queued async jobs reading mem; JS thread only, so no atomics */
} vault_key;

/* Distinguishes our Externals from anyone else's, so a stray External can never be taken for a
   key (N-API 8 type tags). */
static const napi_type_tag KEY_TAG = {0x7661756c746b6579ULL, 0x68616e646c653031ULL};

/* Returns NULL with *err set. */
static vault_key *key_alloc(size_t len, int *err) {
  vault_key *k = calloc(1, sizeof *k);
  if (k == NULL) {
    *err = ENOMEM;
    return NULL;
  }
  k->mem = vault_secure_alloc(len, err);
  if (k->mem == NULL) {
    free(k);
    return NULL;
  }
  k->len = len;
  return k;
}

/* Idempotent. */
static void key_wipe(vault_key *k) {
  vault_secure_free(k->mem, k->len); /* NULL-safe */
  k->mem = NULL;
}

static void key_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* Async jobs hold a reference to the External, so the GC cannot get here while one runs. */
  key_wipe(data);
  free(data);
}

/* Takes ownership of k (wipes and frees it on failure). */
static napi_value key_wrap(napi_env env, vault_key *k) {
  napi_value ext;
  /* XTS with key1 == key2 is the degenerate case IEEE 1619-2018 forbids; the cipher engine refuses it
     when it keys a context. Refuse it as soon as the key exists rather than on first use. */
  if (k->len == VAULT_XTS_KEY_LEN &&
      CRYPTO_memcmp(k->mem, k->mem + VAULT_XTS_KEY_LEN / 2, VAULT_XTS_KEY_LEN / 2) == 0) {
    key_wipe(k);
    free(k);
    vault_throw_error(env, "ERR_VAULT_XTS_EQUAL_HALVES",
                "invalid XTS-AES-256 key: its two 32-byte halves are equal");
    return NULL;
  }
  if (napi_create_external(env, k, key_finalize, NULL, &ext) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_create_external");
    key_wipe(k);
    free(k);
    return NULL;
  }
  if (napi_type_tag_object(env, ext, &KEY_TAG) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_type_tag_object");
    key_wipe(k);  /* the finalizer frees k when the External is collected */
    return NULL;
  }
  return ext;
}

static bool key_unwrap(napi_env env, napi_value v, bool allow_disposed, vault_key **out) {
  napi_valuetype t;
  bool tagged = false;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof");
    return false;
  }
  if (t != napi_external) {
    vault_throw_type_error(env, "expected a native key handle");
    return false;
  }
  if (napi_check_object_type_tag(env, v, &KEY_TAG, &tagged) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_check_object_type_tag");
    return false;
  }
  if (!tagged) {
    vault_throw_type_error(env, "expected a native key handle");
    return false;
  }
  if (napi_get_value_external(env, v, &p) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_get_value_external");
    return false;
  }
  *out = p;
  if ((*out)->disposed && !allow_disposed) {
    vault_throw_error(env, "ERR_VAULT_KEY_DISPOSED", "the key handle has been disposed");
    return false;
  }
  return true;
}

bool vault_key_bytes(napi_env env, napi_value v, const uint8_t **mem, size_t *len) {
  vault_key *k;
  if (!key_unwrap(env, v, false, &k)) return false;
  *mem = k->mem;
  *len = k->len;
  return true;
}

static bool get_key_length(napi_env env, napi_value v, size_t *len) {
  char msg[96];
  if (!vault_arg_index(env, v, "key length", (double)KEY_MAX_LEN, len)) return false;
  if (*len == 0) {
    snprintf(msg, sizeof msg, "key length must be in [1, %d]", KEY_MAX_LEN);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}

/* keyFromBytes(bytes: Uint8Array): External. Wipes `bytes` once they are copied (and also when
   the key is then refused), so the caller's copy never outlives this call. */
static napi_value key_from_bytes(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  uint8_t *src;
  size_t len;
  vault_key *k;
  int err;
  char msg[64];
  if (!vault_arg_count(env, info, 1, argv) || !vault_arg_bytes(env, argv[0], "key bytes", &src, &len)) return NULL;
  if (len == 0 || len > KEY_MAX_LEN) {
    snprintf(msg, sizeof msg, "key length must be in [1, %d]", KEY_MAX_LEN);
    vault_throw_range_error(env, msg);
    return NULL;
  }
  k = key_alloc(len, &err);
  if (k != NULL) memcpy(k->mem, src, len);
  OPENSSL_cleanse(src, len);
  if (k == NULL) {
    vault_throw_errno(env, "mmap/mlock", "cannot allocate locked memory for a key", err);
    return NULL;
  }
  return key_wrap(env, k);
}

/* keyFromFd(fd, length): External. Reads straight into the locked pages: the key never passes
   through a JS buffer. Blocks until `length` bytes have arrived. */
static napi_value key_from_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int fd, err;
  size_t len, got;
  vault_key *k;
  char msg[128];
  if (!vault_arg_count(env, info, 2, argv) || !vault_arg_fd(env, argv[0], &fd) || !get_key_length(env, argv[1], &len))
    return NULL;
  k = key_alloc(len, &err);
  if (k == NULL) {
    vault_throw_errno(env, "mmap/mlock", "cannot allocate locked memory for a key", err);
    return NULL;
  }
  err = vault_secure_read_fd(fd, k->mem, len, &got);
  if (err != 0) {
    key_wipe(k);
    free(k);
    if (err == -1) {
      snprintf(msg, sizeof msg, "reading a key from fd %d: end of file after %zu of %zu bytes", fd, got, len);
      vault_throw_error(env, "ERR_VAULT_KEY_SHORT_READ", msg);
    } else {
      snprintf(msg, sizeof msg, "reading a key from fd %d", fd);
      vault_throw_errno(env, "read", msg, err);
    }
    return NULL;
  }
  return key_wrap(env, k);
}

/* keyToFd(key, fd): void. Writes straight from the locked pages (e.g. into a pipe whose read end a
   child process inherits). */
static napi_value key_to_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vault_key *k;
  int fd, err;
  char msg[64];
  if (!vault_arg_count(env, info, 2, argv) || !key_unwrap(env, argv[0], false, &k) || !vault_arg_fd(env, argv[1], &fd))
    return NULL;
  err = vault_secure_write_fd(fd, k->mem, k->len);
  if (err != 0) {
    snprintf(msg, sizeof msg, "writing a key to fd %d", fd);
    vault_throw_errno(env, "write", msg, err);
  }
  return NULL;
}

/* keyLength(key): number. */
static napi_value key_length(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  vault_key *k;
  if (!vault_arg_count(env, info, 1, argv) || !key_unwrap(env, argv[0], false, &k)) return NULL;
  CHECK(napi_create_uint32(env, (uint32_t)k->len, &result));
  return result;
}

/* keyCopyTo(key, target): void. For the few JS consumers that need raw key bytes; the caller
   owns, and must wipe, the copy. */
static napi_value key_copy_to(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  vault_key *k;
  uint8_t *dst;
  size_t len;
  if (!vault_arg_count(env, info, 2, argv) || !key_unwrap(env, argv[0], false, &k) ||
      !vault_arg_bytes(env, argv[1], "target", &dst, &len))
    return NULL;
  if (len != k->len) {
    vault_throw_range_error(env, "target length must equal the key length");
    return NULL;
  }
  memcpy(dst, k->mem, len);
  return NULL;
}

/* keyDispose(key): void. Idempotent. If async jobs still read the key, the wipe happens when the
   last one completes; the handle refuses new work immediately either way. */
static napi_value key_dispose(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  vault_key *k;
  if (!vault_arg_count(env, info, 1, argv) || !key_unwrap(env, argv[0], true, &k)) return NULL;
  k->disposed = true;
  if (k->inflight == 0) key_wipe(k);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* XTS over a cipher chain (cipher_engine.c)                                                    */

typedef struct {
  const uint8_t *key; /* the chain's key (cipher_engine.h layout): the handle's locked pages */
  vault_chain chain;
  uint8_t *data;
  size_t len;
  size_t sector;
  uint64_t first_tweak;
  uint64_t step;
  int enc;
} xts_job;

/*
 * Runs one batch through cipher_engine (libgcrypt's XTS for AES). Safe on any thread: a fresh
 * context per call, never shared, because jobs for the same key run concurrently on several
 * threadpool threads.
 *
 * Per call rather than a pool of pre-keyed contexts in the handle: opening and keying a libgcrypt
 * AES XTS handle in its secure pool, then closing it, costs well under a microsecond. Measured
 * through JS (2-core EPYC VM, libgcrypt 1.10.1, best of 5 x 200,000 calls): a lone 4 KiB xts()
 * call takes 1.35 us at 4096-byte sectors and 1.71 us at 512-byte ones (OpenSSL's EVP contexts,
 * used before, took 2.25 and 3.09 us); from 64 KiB batches up the difference is noise. A pool
 * would also keep the expanded key schedules alive for the life of the handle.
 *
 * Those schedules live in libgcrypt's secure (locked) pool, and gcry_cipher_close wipes them, so
 * they exist only for the duration of the call.
 *
 * On failure the buffer contents are unspecified (some sectors may be processed).
 */
static bool xts_run(const xts_job *j, char *err, size_t errlen) {
  vault_cipher_ctx *ctx = vault_cipher_ctx_new(&j->chain, j->key);
  bool ok = ctx != NULL && vault_cipher_run(ctx, j->data, j->len, j->sector, j->first_tweak, j->step, j->enc) == 0;
  if (!ok) snprintf(err, errlen, "%s", vault_cipher_error()); /* same thread as the failure */
  vault_cipher_ctx_free(ctx);                                  /* NULL-safe */
  return ok;
}

static bool arg_chain(napi_env env, napi_value v, vault_chain *out) { return vault_arg_chain(env, v, "cipher", out); }

/* (key, buf, sectorSize, firstTweak: bigint, tweakStep: bigint, encrypt: boolean, cipher: string) */
static bool xts_parse(napi_env env, napi_callback_info info, napi_value *argv, vault_key **key, xts_job *j) {
  bool enc;
  uint64_t last;
  char msg[160];
  if (!vault_arg_count(env, info, 7, argv) || !key_unwrap(env, argv[0], false, key) ||
      !vault_arg_bytes(env, argv[1], "buf", &j->data, &j->len) ||
      !vault_arg_index(env, argv[2], "sectorSize", (double)VAULT_XTS_MAX_SECTOR, &j->sector) ||
      !vault_arg_u64(env, argv[3], "firstTweak", &j->first_tweak) || !vault_arg_u64(env, argv[4], "tweakStep", &j->step) ||
      !vault_arg_bool(env, argv[5], "encrypt", &enc) || !arg_chain(env, argv[6], &j->chain))
    return false;
  if ((*key)->len != vault_chain_key_len(&j->chain)) {
    snprintf(msg, sizeof msg, "this XTS cipher chain needs a %zu-byte key, this handle holds %zu bytes",
             vault_chain_key_len(&j->chain), (*key)->len);
    vault_throw_range_error(env, msg);
    return false;
  }
  if (j->sector < VAULT_XTS_BLOCK || j->sector % VAULT_XTS_BLOCK != 0) {
    snprintf(msg, sizeof msg, "sectorSize must be a multiple of 16 in [16, %d], got %zu", VAULT_XTS_MAX_SECTOR,
             j->sector);
    vault_throw_range_error(env, msg);
    return false;
  }
  if (j->len == 0 || j->len % j->sector != 0) {
    snprintf(msg, sizeof msg, "buffer length %zu is not a positive multiple of sectorSize %zu", j->len, j->sector);
    vault_throw_range_error(env, msg);
    return false;
  }
  /* The tweak of the last sector must still fit in 64 bits. */
  if (__builtin_mul_overflow((uint64_t)(j->len / j->sector - 1), j->step, &last) ||
      __builtin_add_overflow(last, j->first_tweak, &last)) {
    vault_throw_range_error(env, "firstTweak + (sectors - 1) * tweakStep exceeds 2^64 - 1");
    return false;
  }
  j->key = (*key)->mem;
  j->enc = enc ? 1 : 0;
  return true;
}

/* cipherEcb(cipher, key, buf, encrypt): void. One cipher's block function on whole blocks under a
   32-byte key, for known-answer tests (cipher_engine.h vault_cipher_ecb). */
static napi_value cipher_ecb(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  vault_chain c;
  vault_key *k;
  uint8_t *buf;
  size_t len;
  bool enc;
  if (!vault_arg_count(env, info, 4, argv) || !arg_chain(env, argv[0], &c) || !key_unwrap(env, argv[1], false, &k) ||
      !vault_arg_bytes(env, argv[2], "buf", &buf, &len) || !vault_arg_bool(env, argv[3], "encrypt", &enc))
    return NULL;
  if (c.n != 1 || k->len != 32 || len % VAULT_XTS_BLOCK != 0) {
    vault_throw_range_error(env, "cipherEcb takes one cipher, a 32-byte key and whole 16-byte blocks");
    return NULL;
  }
  if (vault_cipher_ecb(c.ids[0], k->mem, buf, len, enc ? 1 : 0) != 0) vault_throw_error(env, "ERR_VAULT_GCRYPT", vault_cipher_error());
  return NULL;
}

/* gcryXtsReference(cipher, key, buf, sectorSize, encrypt): void. libgcrypt's own XTS through an XTS
   chain (AES included, Kuznyechik not), for `vault benchmark`'s reference figure. */
static napi_value gcry_reference(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  vault_chain c;
  vault_key *k;
  uint8_t *buf;
  size_t len, sector;
  bool enc;
  if (!vault_arg_count(env, info, 5, argv) || !arg_chain(env, argv[0], &c) || !key_unwrap(env, argv[1], false, &k) ||
      !vault_arg_bytes(env, argv[2], "buf", &buf, &len) ||
      !vault_arg_index(env, argv[3], "sectorSize", (double)VAULT_XTS_MAX_SECTOR, &sector) ||
      !vault_arg_bool(env, argv[4], "encrypt", &enc))
    return NULL;
  if (c.n == 0 || k->len != vault_chain_key_len(&c) || sector == 0 || sector % VAULT_XTS_BLOCK != 0 || len % sector != 0) {
    vault_throw_range_error(env, "gcryXtsReference takes an XTS chain, its key (64 bytes per cipher) and whole sectors");
    return NULL;
  }
  if (vault_gcry_xts_reference(&c, k->mem, buf, len, sector, enc) != 0) vault_throw_error(env, "ERR_VAULT_GCRYPT", vault_cipher_error());
  return NULL;
}

/* xts(key, buf, sectorSize, firstTweak, tweakStep, encrypt, cipher): void, in place. */
static napi_value xts_sync(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  vault_key *k;
  xts_job j;
  char err[256];
  if (!xts_parse(env, info, argv, &k, &j)) return NULL;
  if (!xts_run(&j, err, sizeof err)) vault_throw_error(env, "ERR_VAULT_CIPHER", err);
  return NULL;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref key_ref; /* keep the key External (hence key->mem) and the buffer alive */
  napi_ref buf_ref;
  vault_key *key;
  xts_job job;
  bool ok;
  char err[256];
} xts_async;

static void xts_execute(napi_env env, void *data) {
  xts_async *a = data;
  (void)env; /* threadpool thread: no N-API calls here */
  a->ok = xts_run(&a->job, a->err, sizeof a->err);
}

static void xts_async_free(napi_env env, xts_async *a) {
  /* Best effort: these only fail while the environment is being torn down. */
  if (a->buf_ref != NULL) (void)napi_delete_reference(env, a->buf_ref);
  if (a->key_ref != NULL) (void)napi_delete_reference(env, a->key_ref);
  if (a->work != NULL) (void)napi_delete_async_work(env, a->work);
  free(a);
}

static napi_value make_error(napi_env env, const char *code, const char *msg) {
  napi_value c, m, e;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m) != napi_ok ||
      napi_create_error(env, c, m, &e) != napi_ok)
    return NULL;
  return e;
}

static void xts_complete(napi_env env, napi_status status, void *data) {
  xts_async *a = data;
  napi_value v = NULL;
  napi_status st;
  if (status == napi_ok && a->ok) {
    st = napi_get_undefined(env, &v);
    if (st == napi_ok) st = napi_resolve_deferred(env, a->deferred, v);
  } else {
    v = make_error(env, "ERR_VAULT_CIPHER", status == napi_ok ? a->err : "XTS job cancelled");
    st = v != NULL ? napi_reject_deferred(env, a->deferred, v) : napi_generic_failure;
  }
  /* Nothing to report to from here; this only fails during environment teardown. */
  (void)st;
  if (--a->key->inflight == 0 && a->key->disposed) key_wipe(a->key);
  xts_async_free(env, a);
}

/* xtsAsync(key, buf, sectorSize, firstTweak, tweakStep, encrypt, cipher): Promise<void>, in place on the
   libuv threadpool. The caller must not touch (or detach/transfer) buf until it settles. */
static napi_value xts_async_start(napi_env env, napi_callback_info info) {
  napi_value argv[7], name, promise, e;
  xts_async *a = calloc(1, sizeof *a);
  if (a == NULL) {
    vault_throw_errno(env, "calloc", "xtsAsync", ENOMEM);
    return NULL;
  }
  if (!xts_parse(env, info, argv, &a->key, &a->job)) goto fail;
  CHECK_GOTO(napi_create_reference(env, argv[0], 1, &a->key_ref), fail);
  CHECK_GOTO(napi_create_reference(env, argv[1], 1, &a->buf_ref), fail);
  CHECK_GOTO(napi_create_string_utf8(env, "vault:xts", NAPI_AUTO_LENGTH, &name), fail);
  CHECK_GOTO(napi_create_async_work(env, NULL, name, xts_execute, xts_complete, a, &a->work), fail);
  CHECK_GOTO(napi_create_promise(env, &a->deferred, &promise), fail);
  if (napi_queue_async_work(env, a->work) != napi_ok) {
    /* A deferred is only released by settling it. */
    e = make_error(env, "ERR_VAULT_NAPI", "vault_native: napi_queue_async_work failed");
    if (e == NULL || napi_reject_deferred(env, a->deferred, e) != napi_ok) vault_throw_napi_failure(env, ADDON_NAME, "napi_reject_deferred");
    xts_async_free(env, a);
    return promise;
  }
  a->key->inflight++;
  return promise;
fail:
  xts_async_free(env, a);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"keyFromBytes", key_from_bytes}, {"keyFromFd", key_from_fd},    {"keyToFd", key_to_fd},
      {"keyLength", key_length},        {"keyCopyTo", key_copy_to},    {"keyDispose", key_dispose},
      {"xts", xts_sync}, {"gcryXtsReference", gcry_reference}, {"cipherEcb", cipher_ecb},                {"xtsAsync", xts_async_start}, {"hardenProcess", harden_process},
      {"isDumpable", is_dumpable},      {"flock", flock_fd},           {"pipe", make_pipe},
      {"sendFds", send_fds},            {"recvFds", recv_fds},            {"dup2", dup2_fd},
      {"probeSocket", probe_socket},    {"setIoFlusher", set_io_flusher}, {"umount2", umount_path},
      {"blkDiscard", blk_discard},       {"loopAttach", loop_attach},   {"blkidProbe", blkid_probe_fd},
      {"mountAt", mount_at},
      {"openat", openat_fd},            {"renameat", renameat_fd},        {"unlinkat", unlinkat_fd},
      {"unitHashesAsync", vault_unit_hashes_start},
      {"zeroUnits", vault_zero_units},
      {"pbkdf2Async", vault_pbkdf2_start},
      {"argon2idAsync", vault_argon2id_start},
      {"argon2Async", vault_argon2_start},
      {"fido2Async", vault_fido2_start},  {"fido2Devices", vault_fido2_devices},
  };
  enum { N = sizeof fns / sizeof fns[0] };
  napi_property_descriptor props[N];
  for (size_t i = 0; i < N; i++) {
    props[i] = (napi_property_descriptor){fns[i].name, NULL, fns[i].fn, NULL, NULL, NULL, napi_enumerable, NULL};
  }
  CHECK(napi_define_properties(env, exports, N, props));
  if (vault_tc_legacy_register(env, exports) == NULL) return NULL; /* TrueCrypt's LRW/CBC modes */
  if (vault_tpm2_register(env, exports) == NULL) return NULL;      /* TPM2 sealing (tpm2-tss) */
  return vault_fuse_register(env, exports); /* serve / wait / stop / stats: the volume server */
}
