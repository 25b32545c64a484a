/*
 * tpm2_napi: JS bindings of tpm2.c. Each call opens the TPM, does its work and closes it again, on
 * the libuv threadpool (a TPM takes tens of milliseconds per command, a slow one seconds).
 *
 *   tpm2SealAsync(secret: Uint8Array (1..128 bytes), tcti: string | null, pcrMask: number,
 *                 pin: Uint8Array | null): Promise<{ public: Buffer, private: Buffer, policyHash: Buffer }>
 *   tpm2UnsealAsync(public: Uint8Array, private: Uint8Array, pcrMask: number, tcti: string | null,
 *                   pin: Uint8Array | null): Promise<Buffer>   (the secret: the caller wipes it)
 *
 * The arguments are copied into the job at the call (the PIN only as its SHA-256), so the caller
 * may wipe its buffers as soon as the call returns. The job lives in locked memory and is wiped
 * when it ends. Rejections carry `code` (ERR_VAULT_TPM_UNAVAILABLE, ERR_VAULT_TPM_POLICY,
 * ERR_VAULT_TPM_AUTH, ERR_VAULT_TPM_LOCKOUT, ERR_VAULT_TPM_BLOB, ERR_VAULT_TPM) and `tpmRc` (the
 * tpm2-tss response code, 0 if none).
 */
#define NAPI_VERSION 8

#include "tpm2_napi.h"
#include "tpm2.h"
#include "napi_util.h"
#include "secure_mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <node_api.h>
#include "token_libs.h"
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define ADDON_NAME "vault_native"
#define CHECK VAULT_CHECK

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  bool unseal;
  vault_tpm2_status status;
  vault_tpm2_job job;
} tpm2_async;

static const char *const CODES[] = {
    [VAULT_TPM2_OK] = "", [VAULT_TPM2_UNAVAILABLE] = "ERR_VAULT_TPM_UNAVAILABLE", [VAULT_TPM2_POLICY] = "ERR_VAULT_TPM_POLICY",
    [VAULT_TPM2_AUTH] = "ERR_VAULT_TPM_AUTH", [VAULT_TPM2_LOCKOUT] = "ERR_VAULT_TPM_LOCKOUT", [VAULT_TPM2_BLOB] = "ERR_VAULT_TPM_BLOB",
    [VAULT_TPM2_FAILED] = "ERR_VAULT_TPM",
};

static void job_free(napi_env env, tpm2_async *a) {
  if (a->work != NULL) (void)napi_delete_async_work(env, a->work);
  vault_secure_free(a, sizeof *a); /* wipes the secret, the PIN's hash and the blobs */
}

static void execute(napi_env env, void *data) {
  tpm2_async *a = data;
  (void)env; /* threadpool thread: no N-API calls here */
  a->status = a->unseal ? vault_tpm2_unseal(&a->job) : vault_tpm2_seal(&a->job);
}

static napi_value make_error(napi_env env, const char *code_s, const char *msg_s, uint32_t rc) {
  napi_value e = NULL, code, msg, v;
  if (napi_create_string_utf8(env, code_s, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg_s, NAPI_AUTO_LENGTH, &msg) != napi_ok || napi_create_error(env, code, msg, &e) != napi_ok)
    return NULL;
  if (napi_create_uint32(env, rc, &v) == napi_ok) (void)napi_set_named_property(env, e, "tpmRc", v);
  return e;
}

static bool set_buffer(napi_env env, napi_value obj, const char *name, const uint8_t *p, size_t len) {
  napi_value b;
  return napi_create_buffer_copy(env, len, p, NULL, &b) == napi_ok && napi_set_named_property(env, obj, name, b) == napi_ok;
}

static void complete(napi_env env, napi_status status, void *data) {
  tpm2_async *a = data;
  vault_tpm2_job *j = &a->job;
  napi_value v = NULL;
  bool ok = status == napi_ok && a->status == VAULT_TPM2_OK;
  if (ok && a->unseal) {
    ok = napi_create_buffer_copy(env, j->secret_len, j->secret, NULL, &v) == napi_ok;
  } else if (ok) {
    ok = napi_create_object(env, &v) == napi_ok && set_buffer(env, v, "public", j->pub, j->pub_len) &&
         set_buffer(env, v, "private", j->priv, j->priv_len) && set_buffer(env, v, "policyHash", j->policy, j->policy_len);
  }
  if (ok) {
    (void)napi_resolve_deferred(env, a->deferred, v);
  } else {
    if (status != napi_ok)
      v = make_error(env, "ERR_VAULT_NAPI", "the TPM job was cancelled", 0);
    else if (a->status == VAULT_TPM2_OK)
      v = make_error(env, "ERR_VAULT_NAPI", "vault_native: cannot build the TPM result", 0);
    else
      v = make_error(env, CODES[a->status], j->err, j->rc);
    if (v != NULL) (void)napi_reject_deferred(env, a->deferred, v);
  }
  job_free(env, a);
}

/* null/undefined: tpm2-tss's default search (an empty string in the job). */
static bool arg_tcti(napi_env env, napi_value v, char *out) {
  napi_valuetype t;
  size_t len;
  if (napi_typeof(env, v, &t) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof");
    return false;
  }
  if (t == napi_null || t == napi_undefined) {
    out[0] = '\0';
    return true;
  }
  if (t != napi_string || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    vault_throw_type_error(env, "tcti must be a string or null");
    return false;
  }
  if (len == 0 || len >= VAULT_TPM2_TCTI_MAX) {
    vault_throw_range_error(env, "tcti must be 1 to 255 bytes, e.g. 'swtpm:host=localhost,port=2321' or 'device:/dev/tpmrm0'");
    return false;
  }
  if (napi_get_value_string_utf8(env, v, out, VAULT_TPM2_TCTI_MAX, &len) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_get_value_string_utf8");
    return false;
  }
  if (strlen(out) != len) {
    vault_throw_range_error(env, "tcti must not contain NUL");
    return false;
  }
  return true;
}

/* The PIN's bytes (null: no PIN) as systemd 252 makes the object's authValue: SHA-256 of them. */
static bool arg_pin(napi_env env, napi_value v, vault_tpm2_job *j) {
  napi_valuetype t;
  uint8_t *pin;
  size_t len;
  unsigned int out_len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "napi_typeof");
    return false;
  }
  if (t == napi_null || t == napi_undefined) return true;
  if (!vault_arg_bytes(env, v, "pin", &pin, &len)) return false;
  if (len == 0 || len > 1024) {
    vault_throw_range_error(env, "the PIN must be 1 to 1024 bytes");
    return false;
  }
  if (EVP_Digest(pin, len, j->auth, &out_len, EVP_sha256(), NULL) != 1 || out_len != sizeof j->auth) {
    vault_throw_error(env, "ERR_VAULT_OPENSSL", "SHA-256 of the PIN failed");
    return false;
  }
  j->has_pin = true;
  return true;
}

static bool arg_blob(napi_env env, napi_value v, const char *what, uint8_t *dst, size_t *dst_len) {
  uint8_t *p;
  size_t len;
  char msg[96];
  if (!vault_arg_bytes(env, v, what, &p, &len)) return false;
  if (len < 2 || len > VAULT_TPM2_MAX_BLOB) {
    snprintf(msg, sizeof msg, "%s must be 2 to %d bytes", what, VAULT_TPM2_MAX_BLOB);
    vault_throw_range_error(env, msg);
    return false;
  }
  memcpy(dst, p, len);
  *dst_len = len;
  return true;
}

static napi_value start(napi_env env, tpm2_async *a, const char *name_s) {
  napi_value name, promise, e;
  if (napi_create_string_utf8(env, name_s, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, execute, complete, a, &a->work) != napi_ok ||
      napi_create_promise(env, &a->deferred, &promise) != napi_ok) {
    vault_throw_napi_failure(env, ADDON_NAME, "TPM job setup");
    job_free(env, a);
    return NULL;
  }
  if (napi_queue_async_work(env, a->work) != napi_ok) {
    e = make_error(env, "ERR_VAULT_NAPI", "vault_native: napi_queue_async_work failed", 0);
    if (e != NULL) (void)napi_reject_deferred(env, a->deferred, e);
    job_free(env, a);
  }
  return promise;
}

static tpm2_async *job_alloc(napi_env env) {
  int err = 0;
  tpm2_async *a = vault_secure_alloc(sizeof *a, &err);
  if (a == NULL) vault_throw_errno(env, "mmap/mlock", "cannot allocate locked memory for a TPM job", err);
  return a;
}

/* tpm2-tss opened (token_libs.c), or a thrown ERR_VAULT_MISSING_LIBRARY saying what to install. */
static bool tpm2_lib(napi_env env) {
  char why[320];
  if (vault_tpm2_lib(why, sizeof why)) return true;
  vault_throw_error(env, "ERR_VAULT_MISSING_LIBRARY", why);
  return false;
}

static napi_value seal(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint8_t *secret;
  size_t len, mask;
  tpm2_async *a;
  if (!tpm2_lib(env)) return NULL;
  if (!vault_arg_count(env, info, 4, argv) || !vault_arg_bytes(env, argv[0], "secret", &secret, &len) ||
      !vault_arg_index(env, argv[2], "pcrMask", (1 << VAULT_TPM2_PCR_COUNT) - 1, &mask))
    return NULL;
  if (len == 0 || len > VAULT_TPM2_MAX_SECRET) {
    vault_throw_range_error(env, "the secret must be 1 to 128 bytes");
    return NULL;
  }
  if ((a = job_alloc(env)) == NULL) return NULL;
  if (!arg_tcti(env, argv[1], a->job.tcti) || !arg_pin(env, argv[3], &a->job)) {
    job_free(env, a);
    return NULL;
  }
  memcpy(a->job.secret, secret, len);
  a->job.secret_len = len;
  a->job.pcr_mask = (uint32_t)mask;
  return start(env, a, "vault:tpm2-seal");
}

static napi_value unseal(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  size_t mask;
  tpm2_async *a;
  if (!tpm2_lib(env)) return NULL;
  if (!vault_arg_count(env, info, 5, argv) || !vault_arg_index(env, argv[2], "pcrMask", (1 << VAULT_TPM2_PCR_COUNT) - 1, &mask))
    return NULL;
  if ((a = job_alloc(env)) == NULL) return NULL;
  a->unseal = true;
  a->job.pcr_mask = (uint32_t)mask;
  if (!arg_blob(env, argv[0], "public", a->job.pub, &a->job.pub_len) ||
      !arg_blob(env, argv[1], "private", a->job.priv, &a->job.priv_len) || !arg_tcti(env, argv[3], a->job.tcti) ||
      !arg_pin(env, argv[4], &a->job)) {
    job_free(env, a);
    return NULL;
  }
  return start(env, a, "vault:tpm2-unseal");
}

napi_value vault_tpm2_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"tpm2SealAsync", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tpm2UnsealAsync", NULL, unseal, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
