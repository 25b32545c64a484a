/* unit_hash: see unit_hash.h. */
#include "unit_hash.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "napi_util.h"

#define ADDON_NAME "vault_native"
#define HASH_OUT 16

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buf_ref, out_ref;
  const uint8_t *buf;
  size_t len, unit;
  uint8_t *out;
  int ok;
} unit_hash_job;

static void execute(napi_env env, void *data) {
  unit_hash_job *j = data;
  (void)env; /* threadpool thread: no N-API calls here */
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen;
  j->ok = 1;
  for (size_t at = 0, i = 0; at < j->len; at += j->unit, i++) {
    size_t n = j->len - at < j->unit ? j->len - at : j->unit;
    if (EVP_Digest(j->buf + at, n, md, &mdlen, EVP_sha256(), NULL) != 1) {
      j->ok = 0;
      return;
    }
    memcpy(j->out + i * HASH_OUT, md, HASH_OUT);
  }
}

static void job_free(napi_env env, unit_hash_job *j) {
  if (j->buf_ref != NULL) (void)napi_delete_reference(env, j->buf_ref);
  if (j->out_ref != NULL) (void)napi_delete_reference(env, j->out_ref);
  if (j->work != NULL) (void)napi_delete_async_work(env, j->work);
  free(j);
}

static void complete(napi_env env, napi_status status, void *data) {
  unit_hash_job *j = data;
  napi_value v = NULL, code, msg;
  if (status == napi_ok && j->ok) {
    if (napi_get_undefined(env, &v) == napi_ok) (void)napi_resolve_deferred(env, j->deferred, v);
  } else if (napi_create_string_utf8(env, "ERR_VAULT_OPENSSL", NAPI_AUTO_LENGTH, &code) == napi_ok &&
             napi_create_string_utf8(env, "SHA-256 of a unit failed", NAPI_AUTO_LENGTH, &msg) == napi_ok &&
             napi_create_error(env, code, msg, &v) == napi_ok) {
    (void)napi_reject_deferred(env, j->deferred, v);
  }
  job_free(env, j);
}

napi_value vault_unit_hashes_start(napi_env env, napi_callback_info info) {
  napi_value argv[3], name, promise;
  uint8_t *buf, *out;
  size_t len, out_len, unit;
  if (!vault_arg_count(env, info, 3, argv) || !vault_arg_bytes(env, argv[0], "buf", &buf, &len) ||
      !vault_arg_index(env, argv[1], "unitSize", 1 << 24, &unit) || !vault_arg_bytes(env, argv[2], "out", &out, &out_len))
    return NULL;
  if (unit == 0 || len == 0 || out_len != ((len + unit - 1) / unit) * HASH_OUT) {
    vault_throw_range_error(env, "unitHashesAsync: out must hold 16 bytes per unit of a non-empty buf");
    return NULL;
  }
  unit_hash_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    vault_throw_errno(env, "calloc", "unitHashesAsync", ENOMEM);
    return NULL;
  }
  *j = (unit_hash_job){.buf = buf, .len = len, .unit = unit, .out = out};
  if (napi_create_reference(env, argv[0], 1, &j->buf_ref) != napi_ok || napi_create_reference(env, argv[2], 1, &j->out_ref) != napi_ok ||
      napi_create_string_utf8(env, "vault:unit-hash", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, j, &j->work) != napi_ok ||
      napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "unitHashesAsync setup");
    job_free(env, j);
    return NULL;
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_value e = NULL, code, msg;
    if (napi_create_string_utf8(env, "ERR_VAULT_NAPI", NAPI_AUTO_LENGTH, &code) == napi_ok &&
        napi_create_string_utf8(env, "napi_queue_async_work failed", NAPI_AUTO_LENGTH, &msg) == napi_ok &&
        napi_create_error(env, code, msg, &e) == napi_ok)
      (void)napi_reject_deferred(env, j->deferred, e);
    job_free(env, j);
  }
  return promise;
}

/* Whether n bytes at p are all zero: the first byte, then the buffer against itself shifted by one. */
static int all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

napi_value vault_zero_units(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  uint8_t *buf, *out;
  size_t len, out_len, unit, zeros = 0;
  if (!vault_arg_count(env, info, 3, argv) || !vault_arg_bytes(env, argv[0], "buf", &buf, &len) ||
      !vault_arg_index(env, argv[1], "unitSize", 1 << 24, &unit) || !vault_arg_bytes(env, argv[2], "out", &out, &out_len))
    return NULL;
  if (unit == 0 || out_len != (len + unit - 1) / unit) {
    vault_throw_range_error(env, "zeroUnits: out must hold one byte per unit of buf");
    return NULL;
  }
  for (size_t at = 0, i = 0; at < len; at += unit, i++) {
    out[i] = (uint8_t)all_zero(buf + at, len - at < unit ? len - at : unit);
    zeros += out[i];
  }
  if (napi_create_double(env, (double)zeros, &result) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "zeroUnits result");
    return NULL;
  }
  return result;
}
