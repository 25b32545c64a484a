/* kdf: see kdf.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mlock2, MLOCK_ONFAULT */
#endif
#include "kdf.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <argon2.h>
#include <gcrypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "cipher_engine.h"
#include "napi_util.h"

#define ADDON_NAME "vault_native"
#define MAX_OUT 1024
#define MAX_ITERATIONS 0x7fffffff
#define ARGON2_MAX_MEMORY_KIB (4UL << 20) /* 4 GiB: vault's and cryptsetup's limit */
#define MAX_HASH 64   /* the longest digest here (SHA-512, Whirlpool, Streebog) */
#define MAX_BLOCK 128 /* the longest HMAC block (SHA-512) */
/* How often the PBKDF2 loop reads the cancel flag: 1024 iterations are at most a few ms (Streebog,
   the slowest, runs about 200 iterations per ms on one core of these machines). */
#define CANCEL_EVERY 1024

enum backend { OSSL, GCRY };

static const struct hash_spec {
  const char *name;
  enum backend backend;
  const char *ossl; /* OpenSSL's fetch name */
  int gcry;         /* libgcrypt's algorithm */
  size_t len;       /* digest bytes: PBKDF2's block */
} HASHES[] = {
    /* Per hash, the faster library on these machines (x86-64 with SHA-NI and AVX2), measured as
       PBKDF2 loops: OpenSSL for the SHA-2 family and BLAKE2s, libgcrypt for RIPEMD-160; Whirlpool
       and Streebog only libgcrypt has (Whirlpool is in OpenSSL's legacy provider only). */
    {"sha1", OSSL, "SHA1", 0, 20},
    {"sha256", OSSL, "SHA256", 0, 32},
    {"sha512", OSSL, "SHA512", 0, 64},
    {"blake2s256", OSSL, "BLAKE2S-256", 0, 32},
    {"ripemd160", GCRY, NULL, GCRY_MD_RMD160, 20},
    {"whirlpool", GCRY, NULL, GCRY_MD_WHIRLPOOL, 64},
    {"streebog512", GCRY, NULL, GCRY_MD_STRIBOG512, 64},
};

/* ---- HMAC over either library ---------------------------------------------------------------- */

typedef struct {
  const struct hash_spec *spec;
  EVP_MD *md;
  EVP_MD_CTX *inner, *outer, *work; /* keyed with K^ipad, K^opad; the running one */
  gcry_md_hd_t g;                   /* libgcrypt's HMAC, keyed */
} hmac_t;

static void hmac_free(hmac_t *h) {
  EVP_MD_CTX_free(h->inner); /* the provider's freectx clears the state */
  EVP_MD_CTX_free(h->outer);
  EVP_MD_CTX_free(h->work);
  EVP_MD_free(h->md);
  if (h->g != NULL) gcry_md_close(h->g); /* secure memory, wiped on release */
  memset(h, 0, sizeof *h);
}

/* RFC 2104: the two keyed states are computed once; each HMAC then costs copies and finals. */
static int hmac_init(hmac_t *h, const struct hash_spec *spec, const uint8_t *key, size_t keylen, const char **why) {
  memset(h, 0, sizeof *h);
  h->spec = spec;
  if (spec->backend == GCRY) {
    if (gcry_md_open(&h->g, spec->gcry, GCRY_MD_FLAG_HMAC | GCRY_MD_FLAG_SECURE) != 0 || gcry_md_setkey(h->g, key, keylen) != 0) {
      *why = "libgcrypt HMAC setup failed";
      return 0;
    }
    return 1;
  }
  uint8_t k[MAX_BLOCK], pad[MAX_BLOCK];
  unsigned int klen = 0;
  int ok = 0;
  h->md = EVP_MD_fetch(NULL, spec->ossl, NULL);
  h->inner = EVP_MD_CTX_new();
  h->outer = EVP_MD_CTX_new();
  h->work = EVP_MD_CTX_new();
  size_t block = h->md != NULL ? (size_t)EVP_MD_get_block_size(h->md) : 0;
  if (h->md == NULL || h->inner == NULL || h->outer == NULL || h->work == NULL || block == 0 || block > MAX_BLOCK) {
    *why = "OpenSSL lacks this digest";
    goto out;
  }
  memset(k, 0, sizeof k);
  if (keylen > block) { /* a long key is hashed first */
    if (EVP_Digest(key, keylen, k, &klen, h->md, NULL) != 1) goto fail;
  } else if (keylen > 0) {
    memcpy(k, key, keylen);
  }
  for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x36;
  if (EVP_DigestInit_ex(h->inner, h->md, NULL) != 1 || EVP_DigestUpdate(h->inner, pad, block) != 1) goto fail;
  for (size_t i = 0; i < block; i++) pad[i] = k[i] ^ 0x5c;
  if (EVP_DigestInit_ex(h->outer, h->md, NULL) != 1 || EVP_DigestUpdate(h->outer, pad, block) != 1) goto fail;
  ok = 1;
  goto out;
fail:
  *why = "OpenSSL HMAC setup failed";
out:
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(pad, sizeof pad);
  return ok;
}

/* out = HMAC(key, a || b) (b may be empty); spec->len bytes. */
static int hmac(hmac_t *h, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out) {
  if (h->g != NULL) {
    gcry_md_reset(h->g); /* back to the keyed inner state */
    gcry_md_write(h->g, a, alen);
    if (blen) gcry_md_write(h->g, b, blen);
    const unsigned char *r = gcry_md_read(h->g, 0);
    if (r == NULL) return 0;
    memcpy(out, r, h->spec->len);
    return 1;
  }
  uint8_t in[MAX_HASH];
  int ok = EVP_MD_CTX_copy_ex(h->work, h->inner) == 1 && EVP_DigestUpdate(h->work, a, alen) == 1 &&
           (blen == 0 || EVP_DigestUpdate(h->work, b, blen) == 1) && EVP_DigestFinal_ex(h->work, in, NULL) == 1 &&
           EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 && EVP_DigestUpdate(h->work, in, h->spec->len) == 1 &&
           EVP_DigestFinal_ex(h->work, out, NULL) == 1;
  OPENSSL_cleanse(in, sizeof in);
  return ok;
}

static int cancelled(const uint8_t *flag) {
  return flag != NULL && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
}

/* ---- Argon2 through libargon2, in memory of our own ---------------------------------------- */

/* libargon2's memory blocks, from its allocate_cbk: one private mapping aligned to 2 MiB and
   advised MADV_HUGEPAGE, so that filling it takes a few faults, not one per 4 KiB page. On these
   machines a fresh 4 KiB page costs ~12 us to fault in: 8 MiB of Argon2 memory took 24 ms of page
   faults against ~4 ms of hashing, 256 MiB ~800 ms of ~950 (bench/RESULTS.md). The blocks are
   derived from the password: locked as they are written where RLIMIT_MEMLOCK has room (best
   effort: an ordinary user's limit is often 8 MiB), never in a core dump, zeros in a forked child.
   libargon2 wipes them before it hands them back (clear_internal_memory), so the free only unmaps. */
#define ARENA_ALIGN ((size_t)2 << 20)

static size_t arena_len(size_t bytes) { return (bytes + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1); }

static int arena_alloc(uint8_t **memory, size_t bytes) {
  size_t len = arena_len(bytes);
  if (len < bytes || len + ARENA_ALIGN < len) return ARGON2_MEMORY_ALLOCATION_ERROR;
  uint8_t *raw = mmap(NULL, len + ARENA_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return ARGON2_MEMORY_ALLOCATION_ERROR;
  uint8_t *p = (uint8_t *)(((uintptr_t)raw + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1));
  if (p > raw) (void)munmap(raw, (size_t)(p - raw));
  if (raw + len + ARENA_ALIGN > p + len) (void)munmap(p + len, (size_t)(raw + len + ARENA_ALIGN - (p + len)));
  (void)madvise(p, len, MADV_HUGEPAGE);
  (void)madvise(p, len, MADV_DONTDUMP);
#ifdef MADV_WIPEONFORK
  (void)madvise(p, len, MADV_WIPEONFORK);
#endif
#ifdef MLOCK_ONFAULT
  (void)mlock2(p, len, MLOCK_ONFAULT);
#endif
  *memory = p;
  return ARGON2_OK;
}

static void arena_free(uint8_t *memory, size_t bytes) {
  (void)munmap(memory, arena_len(bytes)); /* also unlocks */
}

/* ---- jobs ------------------------------------------------------------------------------------ */

enum outcome { DONE, FAILED, CANCELLED };

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref pw_ref, salt_ref, out_ref, cancel_ref;
  const uint8_t *pw, *salt, *cancel;
  size_t pw_len, salt_len, out_len;
  uint8_t *out;
  enum kind { PBKDF2, GCRY_ARGON2ID, LIB_ARGON2 } kind;
  /* PBKDF2 */
  const struct hash_spec *spec;
  unsigned long iterations;
  uint32_t first_block;
  /* Argon2 (libgcrypt's Argon2id; libargon2's Argon2i or Argon2id, with a secret and data) */
  unsigned long memory_kib, passes, lanes;
  argon2_type type;
  napi_ref secret_ref, ad_ref;
  const uint8_t *secret, *ad;
  size_t secret_len, ad_len;
  int skipping; /* cancelled: the remaining segments are not run */
  enum outcome outcome;
  const char *why;
} kdf_job;

/* RFC 8018 §5.2 for blocks first_block, first_block + 1, ... until out is full. */
static void pbkdf2_execute(kdf_job *j) {
  hmac_t h;
  uint8_t u[MAX_HASH], t[MAX_HASH], index[4];
  size_t len = j->spec->len;
  j->outcome = FAILED;
  if (!hmac_init(&h, j->spec, j->pw, j->pw_len, &j->why)) goto out;
  for (size_t done = 0, i = j->first_block; done < j->out_len; i++) {
    index[0] = (uint8_t)(i >> 24), index[1] = (uint8_t)(i >> 16), index[2] = (uint8_t)(i >> 8), index[3] = (uint8_t)i;
    if (!hmac(&h, j->salt, j->salt_len, index, 4, u)) goto hash_failed;
    memcpy(t, u, len);
    for (unsigned long c = 1; c < j->iterations; c++) {
      if (c % CANCEL_EVERY == 0 && cancelled(j->cancel)) {
        j->outcome = CANCELLED;
        goto out;
      }
      if (!hmac(&h, u, len, NULL, 0, u)) goto hash_failed;
      for (size_t k = 0; k < len; k++) t[k] ^= u[k];
    }
    size_t n = j->out_len - done < len ? j->out_len - done : len;
    memcpy(j->out + done, t, n);
    done += n;
  }
  j->outcome = DONE;
  goto out;
hash_failed:
  j->why = "the digest failed";
out:
  hmac_free(&h);
  OPENSSL_cleanse(u, sizeof u);
  OPENSSL_cleanse(t, sizeof t);
}

/* libgcrypt hands each Argon2 segment to us: run it unless cancelled (a skipped one leaves memory
   blocks unfilled, so the result is garbage, and it is thrown away). */
static int argon2_dispatch(void *ctx, gcry_kdf_job_fn_t run, void *priv) {
  kdf_job *j = ctx;
  if (!j->skipping && cancelled(j->cancel)) j->skipping = 1;
  if (!j->skipping) run(priv);
  return 0;
}

static int argon2_wait_all(void *ctx) {
  (void)ctx;
  return 0;
}

static void argon2_execute(kdf_job *j) {
  const unsigned long param[4] = {j->out_len, j->passes, j->memory_kib, j->lanes};
  const gcry_kdf_thread_ops_t ops = {j, argon2_dispatch, argon2_wait_all};
  gcry_kdf_hd_t h = NULL;
  gcry_error_t e = gcry_kdf_open(&h, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, param, 4, j->pw, j->pw_len, j->salt, j->salt_len, NULL, 0, NULL, 0);
  if (e == 0) e = gcry_kdf_compute(h, &ops);
  if (e == 0 && !j->skipping) e = gcry_kdf_final(h, j->out_len, j->out);
  if (h != NULL) gcry_kdf_close(h); /* wipes and frees the memory blocks */
  j->outcome = e != 0 ? FAILED : j->skipping ? CANCELLED : DONE;
  if (e != 0) j->why = gcry_err_code(e) == GPG_ERR_ENOMEM || gcry_err_code(e) == GPG_ERR_SYSTEM_ERROR ? "not enough memory" : gcry_strerror(e);
}

static void libargon2_execute(kdf_job *j) {
  argon2_context c = {
      .out = j->out, .outlen = (uint32_t)j->out_len, .pwd = (uint8_t *)j->pw, .pwdlen = (uint32_t)j->pw_len,
      .salt = (uint8_t *)j->salt, .saltlen = (uint32_t)j->salt_len, .secret = (uint8_t *)j->secret,
      .secretlen = (uint32_t)j->secret_len, .ad = (uint8_t *)j->ad, .adlen = (uint32_t)j->ad_len,
      .t_cost = (uint32_t)j->passes, .m_cost = (uint32_t)j->memory_kib, .lanes = (uint32_t)j->lanes,
      .threads = (uint32_t)j->lanes, .version = ARGON2_VERSION_13, .allocate_cbk = arena_alloc, .free_cbk = arena_free,
      .flags = ARGON2_DEFAULT_FLAGS};
  int rc = argon2_ctx(&c, j->type);
  j->outcome = rc == ARGON2_OK ? DONE : FAILED;
  if (rc != ARGON2_OK) j->why = rc == ARGON2_MEMORY_ALLOCATION_ERROR ? "not enough memory" : argon2_error_message(rc);
}

static void execute(napi_env env, void *data) {
  kdf_job *j = data;
  (void)env; /* threadpool thread: no N-API calls here */
  if (j->kind == LIB_ARGON2)
    libargon2_execute(j);
  else if (j->kind == GCRY_ARGON2ID)
    argon2_execute(j);
  else
    pbkdf2_execute(j);
  if (j->outcome != DONE) OPENSSL_cleanse(j->out, j->out_len); /* no partial key left behind */
}

static void job_free(napi_env env, kdf_job *j) {
  if (j->pw_ref != NULL) (void)napi_delete_reference(env, j->pw_ref);
  if (j->salt_ref != NULL) (void)napi_delete_reference(env, j->salt_ref);
  if (j->out_ref != NULL) (void)napi_delete_reference(env, j->out_ref);
  if (j->cancel_ref != NULL) (void)napi_delete_reference(env, j->cancel_ref);
  if (j->secret_ref != NULL) (void)napi_delete_reference(env, j->secret_ref);
  if (j->ad_ref != NULL) (void)napi_delete_reference(env, j->ad_ref);
  if (j->work != NULL) (void)napi_delete_async_work(env, j->work);
  free(j);
}

static void reject(napi_env env, napi_deferred d, const char *code_s, const char *msg_s) {
  napi_value e = NULL, code, msg;
  if (napi_create_string_utf8(env, code_s, NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_string_utf8(env, msg_s, NAPI_AUTO_LENGTH, &msg) == napi_ok && napi_create_error(env, code, msg, &e) == napi_ok)
    (void)napi_reject_deferred(env, d, e);
}

static void complete(napi_env env, napi_status status, void *data) {
  kdf_job *j = data;
  const char *what = j->kind == PBKDF2 ? "PBKDF2" : j->kind == LIB_ARGON2 && j->type == Argon2_i ? "Argon2i" : "Argon2id";
  napi_value v;
  char msg[160];
  if (status == napi_ok && j->outcome == DONE) {
    if (napi_get_undefined(env, &v) == napi_ok) (void)napi_resolve_deferred(env, j->deferred, v);
  } else if (status == napi_ok && j->outcome == CANCELLED) {
    snprintf(msg, sizeof msg, "%s cancelled", what);
    reject(env, j->deferred, "ERR_VAULT_CANCELLED", msg);
  } else {
    if (status != napi_ok) OPENSSL_cleanse(j->out, j->out_len);
    snprintf(msg, sizeof msg, "%s failed: %s", what, status != napi_ok ? "the job did not run" : j->why != NULL ? j->why : "unknown error");
    reject(env, j->deferred, "ERR_VAULT_KDF", msg);
  }
  job_free(env, j);
}

static const struct hash_spec *hash_spec(napi_env env, napi_value v) {
  char name[32];
  size_t len;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok) {
    vault_throw_type_error(env, "pbkdf2Async: hash must be a string");
    return NULL;
  }
  for (size_t i = 0; i < sizeof HASHES / sizeof HASHES[0]; i++)
    if (strcmp(name, HASHES[i].name) == 0) return &HASHES[i];
  vault_throw_range_error(env, "pbkdf2Async: unknown hash (sha1, sha256, sha512, blake2s256, ripemd160, whirlpool, streebog512)");
  return NULL;
}

/* The cancel argument: null/undefined, or a non-empty Uint8Array. */
static bool cancel_arg(napi_env env, napi_value v, uint8_t **flag) {
  napi_valuetype t;
  size_t len;
  *flag = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof"), false;
  if (t == napi_null || t == napi_undefined) return true;
  if (!vault_arg_bytes(env, v, "cancel", flag, &len)) return false;
  if (len == 0) return vault_throw_range_error(env, "cancel must hold at least one byte"), false;
  return true;
}

/* Common part: references, the async work, the promise. Takes ownership of j. */
static napi_value start(napi_env env, kdf_job *j, napi_value pw, napi_value salt, napi_value out, napi_value cancel) {
  napi_value name, promise;
  /* libargon2 needs no libgcrypt: a vault keyslot's unlock does not start it (and its locked pool). */
  if (j->kind != LIB_ARGON2 && !vault_gcry_init()) {
    vault_throw_error(env, "ERR_VAULT_GCRYPT", "libgcrypt 1.10 or later is needed (Debian: libgcrypt20)");
    free(j);
    return NULL;
  }
  if (napi_create_reference(env, pw, 1, &j->pw_ref) != napi_ok || napi_create_reference(env, salt, 1, &j->salt_ref) != napi_ok ||
      napi_create_reference(env, out, 1, &j->out_ref) != napi_ok ||
      (j->cancel != NULL && napi_create_reference(env, cancel, 1, &j->cancel_ref) != napi_ok) ||
      napi_create_string_utf8(env, j->kind == PBKDF2 ? "vault:pbkdf2" : "vault:argon2", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "kdf setup");
    job_free(env, j);
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    reject(env, j->deferred, "ERR_VAULT_NAPI", "napi_queue_async_work failed");
    job_free(env, j);
  }
  return promise;
}

static kdf_job *new_job(napi_env env) {
  kdf_job *j = calloc(1, sizeof *j);
  if (j == NULL) vault_throw_errno(env, "calloc", "kdf", ENOMEM);
  return j;
}

napi_value vault_pbkdf2_start(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  const struct hash_spec *spec;
  uint8_t *pw, *salt, *out, *cancel;
  size_t pw_len, salt_len, out_len, iterations, first;
  if (!vault_arg_count(env, info, 7, argv) || (spec = hash_spec(env, argv[0])) == NULL ||
      !vault_arg_bytes(env, argv[1], "password", &pw, &pw_len) || !vault_arg_bytes(env, argv[2], "salt", &salt, &salt_len) ||
      !vault_arg_index(env, argv[3], "iterations", MAX_ITERATIONS, &iterations) || !vault_arg_bytes(env, argv[4], "out", &out, &out_len) ||
      !vault_arg_index(env, argv[5], "firstBlock", UINT32_MAX, &first) || !cancel_arg(env, argv[6], &cancel))
    return NULL;
  size_t blocks = (out_len + spec->len - 1) / spec->len;
  if (iterations == 0 || out_len == 0 || out_len > MAX_OUT || salt_len == 0 || first == 0 || first - 1 > UINT32_MAX - blocks) {
    vault_throw_range_error(env, "pbkdf2Async: iterations, salt and out (at most 1024 bytes) must not be empty; blocks are numbered 1 to 2^32 - 1");
    return NULL;
  }
  kdf_job *j = new_job(env);
  if (j == NULL) return NULL;
  *j = (kdf_job){.pw = pw, .pw_len = pw_len, .salt = salt, .salt_len = salt_len, .out = out, .out_len = out_len, .cancel = cancel,
                 .spec = spec, .iterations = iterations, .first_block = (uint32_t)first};
  return start(env, j, argv[1], argv[2], argv[4], argv[6]);
}

napi_value vault_argon2id_start(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  uint8_t *pw, *salt, *out, *cancel;
  size_t pw_len, salt_len, out_len, memory, passes, lanes;
  if (!vault_arg_count(env, info, 7, argv) || !vault_arg_bytes(env, argv[0], "password", &pw, &pw_len) ||
      !vault_arg_bytes(env, argv[1], "salt", &salt, &salt_len) || !vault_arg_index(env, argv[2], "memoryKiB", 1 << 30, &memory) ||
      !vault_arg_index(env, argv[3], "passes", MAX_ITERATIONS, &passes) || !vault_arg_index(env, argv[4], "lanes", 255, &lanes) ||
      !vault_arg_bytes(env, argv[5], "out", &out, &out_len) || !cancel_arg(env, argv[6], &cancel))
    return NULL;
  /* RFC 9106 §3.1: salt ≥ 8 bytes, tag ≥ 4 bytes, memory ≥ 8·lanes KiB. */
  if (passes == 0 || lanes == 0 || memory < 8 * lanes || out_len < 4 || out_len > MAX_OUT || salt_len < 8) {
    vault_throw_range_error(env, "argon2idAsync: passes, lanes ≥ 1, memory ≥ 8·lanes KiB, salt ≥ 8 bytes, out 4 to 1024 bytes");
    return NULL;
  }
  kdf_job *j = new_job(env);
  if (j == NULL) return NULL;
  *j = (kdf_job){.pw = pw, .pw_len = pw_len, .salt = salt, .salt_len = salt_len, .out = out, .out_len = out_len, .cancel = cancel,
                 .kind = GCRY_ARGON2ID, .memory_kib = memory, .passes = passes, .lanes = lanes};
  return start(env, j, argv[0], argv[1], argv[5], argv[6]);
}

/* null/undefined, or a Uint8Array (kept alive by a reference until the job settles). */
static bool optional_bytes(napi_env env, napi_value v, const char *what, const uint8_t **data, size_t *len, napi_ref *ref) {
  napi_valuetype t;
  *data = NULL, *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof"), false;
  if (t == napi_null || t == napi_undefined) return true;
  uint8_t *d;
  if (!vault_arg_bytes(env, v, what, &d, len)) return false;
  *data = d;
  return napi_create_reference(env, v, 1, ref) == napi_ok || (vault_throw_napi_failure(env, ADDON_NAME, "napi_create_reference"), false);
}

napi_value vault_argon2_start(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  char variant[16];
  size_t variant_len;
  uint8_t *pw, *salt, *out;
  size_t pw_len, salt_len, out_len, memory, passes, lanes;
  if (!vault_arg_count(env, info, 9, argv)) return NULL;
  if (napi_get_value_string_utf8(env, argv[0], variant, sizeof variant, &variant_len) != napi_ok ||
      (strcmp(variant, "argon2i") != 0 && strcmp(variant, "argon2id") != 0)) {
    vault_throw_type_error(env, "argon2Async: the variant must be \"argon2i\" or \"argon2id\"");
    return NULL;
  }
  if (!vault_arg_bytes(env, argv[1], "password", &pw, &pw_len) || !vault_arg_bytes(env, argv[2], "salt", &salt, &salt_len) ||
      !vault_arg_index(env, argv[3], "memoryKiB", ARGON2_MAX_MEMORY_KIB, &memory) ||
      !vault_arg_index(env, argv[4], "passes", MAX_ITERATIONS, &passes) || !vault_arg_index(env, argv[5], "lanes", 255, &lanes) ||
      !vault_arg_bytes(env, argv[6], "out", &out, &out_len))
    return NULL;
  /* RFC 9106 §3.1: salt ≥ 8 bytes, tag ≥ 4 bytes, memory ≥ 8·lanes KiB. */
  if (passes == 0 || lanes == 0 || memory < 8 * lanes || out_len < 4 || out_len > MAX_OUT || salt_len < 8 || salt_len > MAX_OUT ||
      pw_len > UINT32_MAX) {
    vault_throw_range_error(env, "argon2Async: passes, lanes ≥ 1, memory ≥ 8·lanes KiB, salt 8 to 1024 bytes, out 4 to 1024 bytes");
    return NULL;
  }
  kdf_job *j = new_job(env);
  if (j == NULL) return NULL;
  *j = (kdf_job){.pw = pw, .pw_len = pw_len, .salt = salt, .salt_len = salt_len, .out = out, .out_len = out_len, .kind = LIB_ARGON2,
                 .type = strcmp(variant, "argon2id") == 0 ? Argon2_id : Argon2_i, .memory_kib = memory, .passes = passes, .lanes = lanes};
  if (!optional_bytes(env, argv[7], "secret", &j->secret, &j->secret_len, &j->secret_ref) ||
      !optional_bytes(env, argv[8], "associatedData", &j->ad, &j->ad_len, &j->ad_ref) || j->secret_len > MAX_OUT || j->ad_len > MAX_OUT) {
    if (j->secret_len > MAX_OUT || j->ad_len > MAX_OUT) vault_throw_range_error(env, "argon2Async: secret and associated data are at most 1024 bytes");
    job_free(env, j);
    return NULL;
  }
  return start(env, j, argv[1], argv[2], argv[6], NULL); /* no cancel: libargon2 runs to the end */
}
