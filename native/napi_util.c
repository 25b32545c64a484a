/* Error helpers shared by both addons; see napi_util.h. */
#define _GNU_SOURCE /* strerrorname_np */
#include "napi_util.h"

#include <stdio.h>
#include <string.h>

bool vault_exception_pending(napi_env env) {
  bool pending = false;
  return napi_is_exception_pending(env, &pending) == napi_ok && pending;
}

void vault_throw_error(napi_env env, const char *code, const char *msg) {
  if (!vault_exception_pending(env)) napi_throw_error(env, code, msg);
}

void vault_throw_type_error(napi_env env, const char *msg) {
  if (!vault_exception_pending(env)) napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

void vault_throw_range_error(napi_env env, const char *msg) {
  if (!vault_exception_pending(env)) napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

void vault_throw_napi_failure(napi_env env, const char *addon, const char *call) {
  const napi_extended_error_info *info = NULL;
  char msg[256];
  if (napi_get_last_error_info(env, &info) != napi_ok) info = NULL;
  snprintf(msg, sizeof msg, "%s: %s failed: %s", addon, call,
           info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
  vault_throw_error(env, "ERR_VAULT_NAPI", msg);
}

const char *vault_errno_name(int err) {
  const char *name = NULL;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  name = strerrorname_np(err);
#endif
  return name != NULL ? name : "ERR_VAULT_SYSCALL";
}

void vault_throw_errno(napi_env env, const char *syscall, const char *what, int err) {
  char msg[512];
  const char *name = vault_errno_name(err);
  napi_value code, text, error, num, sys;
  if (vault_exception_pending(env)) return;
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), syscall);
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) != napi_ok ||
      napi_create_error(env, code, text, &error) != napi_ok ||
      napi_create_int32(env, -err, &num) != napi_ok || /* negative, like libuv / Node */
      napi_set_named_property(env, error, "errno", num) != napi_ok ||
      napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys) != napi_ok ||
      napi_set_named_property(env, error, "syscall", sys) != napi_ok || napi_throw(env, error) != napi_ok) {
    vault_throw_error(env, name, msg);
  }
}
