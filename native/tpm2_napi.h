/* tpm2_napi: the JS bindings of TPM2 sealing (tpm2_napi.c over tpm2.c). */
#ifndef VAULT_TPM2_NAPI_H
#define VAULT_TPM2_NAPI_H

#include <node_api.h>

/* Adds tpm2SealAsync and tpm2UnsealAsync to `exports`; NULL with an exception on failure. */
napi_value vault_tpm2_register(napi_env env, napi_value exports);

#endif
