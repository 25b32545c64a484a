/*
 * napi_util: the error helpers both addons (vault_native, vault_fuse) use. Names carry a vault_
 * prefix: the addons are loaded into the node binary, whose own exported symbols could otherwise
 * interpose on generic names.
 */
#ifndef VAULT_NAPI_UTIL_H
#define VAULT_NAPI_UTIL_H

#include <stdbool.h>
#include <node_api.h>

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

/* Every N-API call is checked; a failure throws and returns NULL (N-API turns that into
   `undefined` with the exception pending). ADDON_NAME must be defined by the including file. */
#define VAULT_CHECK(call)                                                                       \
  do {                                                                                          \
    if ((call) != napi_ok) {                                                                    \
      vault_throw_napi_failure(env, ADDON_NAME, #call);                                         \
      return NULL;                                                                              \
    }                                                                                           \
  } while (0)

#endif
