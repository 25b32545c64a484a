/*
 * napi_util: the N-API helpers every part of the addon uses: errors, positional arguments, option
 * objects. Names carry a vault_
 * prefix: the addons are loaded into the node binary, whose own exported symbols could otherwise
 * interpose on generic names.
 */
#ifndef VAULT_NAPI_UTIL_H
#define VAULT_NAPI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>
#include "cipher_engine.h"

/* An earlier, more specific exception wins over a follow-up one: every thrower checks this first. */
bool vault_exception_pending(napi_env env);
void vault_throw_error(napi_env env, const char *code, const char *msg);
void vault_throw_type_error(napi_env env, const char *msg);   /* code ERR_INVALID_ARG_TYPE */
void vault_throw_range_error(napi_env env, const char *msg);  /* code ERR_OUT_OF_RANGE */
/* "<addon>: <call> failed: <N-API's message>", code ERR_VAULT_NAPI. Call it right after the failing
   N-API call: the last-error info is overwritten by the next one. */
void vault_throw_napi_failure(napi_env env, const char *addon, const char *call);
/* "EPIPE" etc. (glibc >= 2.32), or "ERR_VAULT_SYSCALL". */
const char *vault_errno_name(int err);
/* An Error shaped like Node's own system errors: code "EPIPE" etc., errno (negative), syscall. */
void vault_throw_errno(napi_env env, const char *syscall, const char *what, int err);

/* Positional arguments. Each returns false with an exception thrown (TypeError / RangeError with a
   message naming `what`). */
bool vault_arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv);
bool vault_arg_bytes(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len); /* Uint8Array */
bool vault_arg_number(napi_env env, napi_value v, const char *what, double *out);
bool vault_arg_index(napi_env env, napi_value v, const char *what, double max, size_t *out); /* integer in [0, max] */
bool vault_arg_fd(napi_env env, napi_value v, int *fd);
bool vault_arg_bool(napi_env env, napi_value v, const char *what, bool *out);
/* A cipher chain: "aes", "serpent-twofish-aes", ... (encryption order; cipher_engine.h). */
bool vault_arg_chain(napi_env env, napi_value v, const char *what, vault_chain *out);
bool vault_arg_u64(napi_env env, napi_value v, const char *what, uint64_t *out); /* a bigint in [0, 2^64) */

/* Properties of an options object ("options.<name>" in messages). Absent optional ones get `def`. */
bool vault_opt_prop(napi_env env, napi_value obj, const char *name, napi_value *v, bool *present);
bool vault_opt_int(napi_env env, napi_value obj, const char *name, bool required, double def, double max,
                   uint64_t *out);
bool vault_opt_bool(napi_env env, napi_value obj, const char *name, bool def, bool *out);
bool vault_opt_u64(napi_env env, napi_value obj, const char *name, uint64_t def, uint64_t *out); /* bigint or safe integer */
bool vault_opt_string(napi_env env, napi_value obj, const char *name, char *buf, size_t cap); /* non-empty, no NUL */

/* Every N-API call is checked; a failure throws and returns NULL (N-API turns that into
   `undefined` with the exception pending). ADDON_NAME must be defined by the including file. */
#define VAULT_CHECK(call)                                                                       \
  do {                                                                                          \
    if ((call) != napi_ok) {                                                                    \
      vault_throw_napi_failure(env, ADDON_NAME, #call);                                         \
      return NULL;                                                                              \
    }                                                                                           \
  } while (0)

/* The same, leaving through `label` instead of returning. */
#define VAULT_CHECK_GOTO(call, label)                                                           \
  do {                                                                                          \
    if ((call) != napi_ok) {                                                                    \
      vault_throw_napi_failure(env, ADDON_NAME, #call);                                         \
      goto label;                                                                               \
    }                                                                                           \
  } while (0)

#endif
