/* N-API helpers shared by every part of the addon; see napi_util.h. */
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

/* ------------------------------------------------------------------------------------------ */
/* Positional arguments                                                                         */

bool vault_arg_count(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_cb_info");
    return false;
  }
  if (argc < want) {
    char msg[96];
    snprintf(msg, sizeof msg, "expected %zu arguments, got %zu", want, argc);
    vault_throw_type_error(env, msg);
    return false;
  }
  return true;
}

/* Uint8Array or Buffer (a Buffer is a Uint8Array). */
bool vault_arg_bytes(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *p = NULL;
  char msg[96];
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_is_typedarray");
    return false;
  }
  if (is_ta && napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_typedarray_info");
    return false;
  }
  if (!is_ta || type != napi_uint8_array) {
    snprintf(msg, sizeof msg, "%s must be a Uint8Array or Buffer", what);
    vault_throw_type_error(env, msg);
    return false;
  }
  *data = p;
  return true;
}

bool vault_arg_number(napi_env env, napi_value v, const char *what, double *out) {
  char msg[96];
  napi_status st = napi_get_value_double(env, v, out);
  if (st == napi_number_expected) {
    snprintf(msg, sizeof msg, "%s must be a number", what);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (st != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_value_double");
    return false;
  }
  return true;
}

/* A non-negative integer below `max`. */
bool vault_arg_index(napi_env env, napi_value v, const char *what, double max, size_t *out) {
  double d;
  char msg[128];
  if (!vault_arg_number(env, v, what, &d)) return false;
  if (!(d >= 0 && d <= max) || (double)(uint64_t)d != d) {
    snprintf(msg, sizeof msg, "%s must be an integer in [0, %.0f], got %g", what, max, d);
    vault_throw_range_error(env, msg);
    return false;
  }
  *out = (size_t)d;
  return true;
}

bool vault_arg_fd(napi_env env, napi_value v, int *fd) {
  size_t n;
  if (!vault_arg_index(env, v, "fd", (double)INT32_MAX, &n)) return false;
  *fd = (int)n;
  return true;
}

bool vault_arg_bool(napi_env env, napi_value v, const char *what, bool *out) {
  char msg[96];
  napi_status st = napi_get_value_bool(env, v, out);
  if (st == napi_boolean_expected) {
    snprintf(msg, sizeof msg, "%s must be a boolean", what);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (st != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_value_bool");
    return false;
  }
  return true;
}

/* A BigInt in [0, 2^64). */
bool vault_arg_chain(napi_env env, napi_value v, const char *what, vault_chain *out) {
  char spec[64], msg[128];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, spec, sizeof spec, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "%s must be a string such as 'aes' or 'serpent-twofish-aes'", what);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (vault_chain_parse(spec, out) != 0) {
    vault_throw_range_error(env, vault_cipher_error());
    return false;
  }
  return true;
}

bool vault_arg_u64(napi_env env, napi_value v, const char *what, uint64_t *out) {
  bool lossless = false;
  char msg[96];
  napi_status st = napi_get_value_bigint_uint64(env, v, out, &lossless);
  if (st == napi_bigint_expected) {
    snprintf(msg, sizeof msg, "%s must be a bigint", what);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (st != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_value_bigint_uint64");
    return false;
  }
  if (!lossless) {  /* negative, or does not fit in 64 bits */
    snprintf(msg, sizeof msg, "%s must be in [0, 2^64)", what);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Option objects                                                                               */

/* Property `name` of `obj`; *present false when undefined. */
bool vault_opt_prop(napi_env env, napi_value obj, const char *name, napi_value *v, bool *present) {
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, v) != napi_ok || napi_typeof(env, *v, &t) != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_get_named_property");
    return false;
  }
  *present = t != napi_undefined;
  return true;
}

/* A required (or optional, with default) non-negative integer number <= max. */
bool vault_opt_int(napi_env env, napi_value obj, const char *name, bool required, double def, double max,
                         uint64_t *out) {
  napi_value v;
  bool present;
  double d;
  char msg[160];
  if (!vault_opt_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    if (required) {
      snprintf(msg, sizeof msg, "options.%s is required", name);
      vault_throw_type_error(env, msg);
      return false;
    }
    *out = (uint64_t)def;
    return true;
  }
  if (napi_get_value_double(env, v, &d) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a number", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (!(d >= 0 && d <= max) || (double)(uint64_t)d != d) {
    snprintf(msg, sizeof msg, "options.%s must be an integer in [0, %.0f], got %g", name, max, d);
    vault_throw_range_error(env, msg);
    return false;
  }
  *out = (uint64_t)d;
  return true;
}

bool vault_opt_bool(napi_env env, napi_value obj, const char *name, bool def, bool *out) {
  napi_value v;
  bool present;
  char msg[96];
  if (!vault_opt_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    *out = def;
    return true;
  }
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a boolean", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  return true;
}

/* A bigint in [0, 2^64) (a safe non-negative integer number is accepted too). */
bool vault_opt_u64(napi_env env, napi_value obj, const char *name, uint64_t def, uint64_t *out) {
  napi_value v;
  bool present, lossless = false;
  napi_valuetype t;
  char msg[96];
  if (!vault_opt_prop(env, obj, name, &v, &present)) return false;
  if (!present) {
    *out = def;
    return true;
  }
  if (napi_typeof(env, v, &t) != napi_ok) {
    vault_throw_napi_failure(env, "vault", "napi_typeof");
    return false;
  }
  if (t == napi_number) return vault_opt_int(env, obj, name, true, 0, 9007199254740991.0, out);
  if (t != napi_bigint || napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a bigint", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (!lossless) {
    snprintf(msg, sizeof msg, "options.%s must be in [0, 2^64)", name);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}

bool vault_opt_string(napi_env env, napi_value obj, const char *name, char *buf, size_t cap) {
  napi_value v;
  bool present;
  size_t len = 0;
  char msg[96];
  if (!vault_opt_prop(env, obj, name, &v, &present)) return false;
  if (!present || napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "options.%s must be a string", name);
    vault_throw_type_error(env, msg);
    return false;
  }
  if (len == 0 || len + 1 >= cap || strlen(buf) != len) {
    snprintf(msg, sizeof msg, "options.%s must be a non-empty path without NUL bytes", name);
    vault_throw_range_error(env, msg);
    return false;
  }
  return true;
}
