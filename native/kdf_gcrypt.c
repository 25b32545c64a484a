/* kdf_gcrypt: see kdf_gcrypt.h. */
#include "kdf_gcrypt.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>
#include "cipher_engine.h"
#include "napi_util.h"

#define ADDON_NAME "vault_native"
#define MAX_OUT 1024
#define MAX_ITERATIONS 0x7fffffff

static const struct {
  const char *name;
  int algo;
} HASHES[] = {
    {"sha512", GCRY_MD_SHA512},       {"sha256", GCRY_MD_SHA256},       {"ripemd160", GCRY_MD_RMD160},
    {"blake2s256", GCRY_MD_BLAKE2S_256}, {"whirlpool", GCRY_MD_WHIRLPOOL}, {"streebog512", GCRY_MD_STRIBOG512},
};

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref pw_ref, salt_ref, out_ref;
  const uint8_t *pw, *salt;
  size_t pw_len, salt_len, out_len;
  unsigned long iterations;
  int algo;
  uint8_t *out;
  gcry_error_t err;
} pbkdf2_job;

static void execute(napi_env env, void *data) {
  pbkdf2_job *j = data;
  (void)env; /* threadpool thread: no N-API calls here */
  j->err = gcry_kdf_derive(j->pw, j->pw_len, GCRY_KDF_PBKDF2, j->algo, j->salt, j->salt_len, j->iterations, j->out_len, j->out);
}

static void job_free(napi_env env, pbkdf2_job *j) {
  if (j->pw_ref != NULL) (void)napi_delete_reference(env, j->pw_ref);
  if (j->salt_ref != NULL) (void)napi_delete_reference(env, j->salt_ref);
  if (j->out_ref != NULL) (void)napi_delete_reference(env, j->out_ref);
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
  pbkdf2_job *j = data;
  napi_value v;
  if (status == napi_ok && j->err == 0) {
    if (napi_get_undefined(env, &v) == napi_ok) (void)napi_resolve_deferred(env, j->deferred, v);
  } else {
    if (j->err != 0) memset(j->out, 0, j->out_len); /* no partial key left behind */
    char msg[160];
    snprintf(msg, sizeof msg, "libgcrypt PBKDF2 failed: %s", j->err != 0 ? gcry_strerror(j->err) : "cancelled");
    reject(env, j->deferred, "ERR_VAULT_GCRYPT", msg);
  }
  job_free(env, j);
}

static int hash_algo(napi_env env, napi_value v) {
  char name[32];
  size_t len;
  if (napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok) {
    vault_throw_type_error(env, "pbkdf2Async: hash must be a string");
    return 0;
  }
  for (size_t i = 0; i < sizeof HASHES / sizeof HASHES[0]; i++)
    if (strcmp(name, HASHES[i].name) == 0) return HASHES[i].algo;
  vault_throw_range_error(env, "pbkdf2Async: unknown hash (sha512, sha256, ripemd160, blake2s256, whirlpool, streebog512)");
  return 0;
}

napi_value vault_pbkdf2_start(napi_env env, napi_callback_info info) {
  napi_value argv[5], name, promise;
  uint8_t *pw, *salt, *out;
  size_t pw_len, salt_len, out_len, iterations;
  int algo;
  if (!vault_arg_count(env, info, 5, argv) || (algo = hash_algo(env, argv[0])) == 0 ||
      !vault_arg_bytes(env, argv[1], "password", &pw, &pw_len) || !vault_arg_bytes(env, argv[2], "salt", &salt, &salt_len) ||
      !vault_arg_index(env, argv[3], "iterations", MAX_ITERATIONS, &iterations) || !vault_arg_bytes(env, argv[4], "out", &out, &out_len))
    return NULL;
  if (iterations == 0 || out_len == 0 || out_len > MAX_OUT || salt_len == 0) {
    vault_throw_range_error(env, "pbkdf2Async: iterations, salt and out (at most 1024 bytes) must not be empty");
    return NULL;
  }
  if (!vault_gcry_init()) {
    vault_throw_error(env, "ERR_VAULT_GCRYPT", "libgcrypt 1.8 or later is needed (Debian: libgcrypt20)");
    return NULL;
  }
  pbkdf2_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    vault_throw_errno(env, "calloc", "pbkdf2Async", ENOMEM);
    return NULL;
  }
  *j = (pbkdf2_job){.pw = pw, .pw_len = pw_len, .salt = salt, .salt_len = salt_len, .out = out, .out_len = out_len,
                    .iterations = iterations, .algo = algo};
  if (napi_create_reference(env, argv[1], 1, &j->pw_ref) != napi_ok || napi_create_reference(env, argv[2], 1, &j->salt_ref) != napi_ok ||
      napi_create_reference(env, argv[4], 1, &j->out_ref) != napi_ok ||
      napi_create_string_utf8(env, "vault:pbkdf2", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "pbkdf2Async setup");
    job_free(env, j);
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    reject(env, j->deferred, "ERR_VAULT_NAPI", "napi_queue_async_work failed");
    job_free(env, j);
  }
  return promise;
}
