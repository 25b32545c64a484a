/* tc_legacy_napi: the JS bindings of TrueCrypt's legacy modes (tc_legacy_napi.c). */
#ifndef VAULT_TC_LEGACY_NAPI_H
#define VAULT_TC_LEGACY_NAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* Adds tcLegacyChains/Open/Header/Sectors/Close to `exports`; NULL with an exception on failure. */
napi_value vault_tc_legacy_register(napi_env env, napi_value exports);

/* Provided by vault_native.c: the bytes of a live key handle, or false with an exception thrown. */
bool vault_key_bytes(napi_env env, napi_value v, const uint8_t **mem, size_t *len);

#endif
