/*
 * token_libs: libfido2 and tpm2-tss, opened when a token is first used rather than when the addon
 * loads. Their dlopen (with the libcrypto, libcbor and libudev they bring) was ~8 ms of every vault
 * process's start, the CLI's and each volume server's, for code only enrolment and token unlock run.
 *
 * Each library function vault calls is reached through a pointer of the function's own type
 * (__typeof__ of its prototype in the library's header), filled by dlsym; fido2.c and tpm2.c
 * include token_calls.h last, which names every call through its pointer. The lists below are
 * those calls. A call missing from them is left an undefined symbol (the libraries are not linked),
 * so the addon fails to load at all (-z now): every test notices, not just the token tests.
 *
 * Both loaders are safe from any thread (pthread_once) and say, on failure, what to install.
 */
#ifndef VAULT_TOKEN_LIBS_H
#define VAULT_TOKEN_LIBS_H

#include <stdbool.h>
#include <stddef.h>

#include <fido.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define VAULT_FIDO2_LIB "libfido2.so.1"
#define VAULT_FIDO2_CALLS(X)                                                                                                   \
  X(fido_assert_allow_cred) X(fido_assert_count) X(fido_assert_flags) X(fido_assert_free) X(fido_assert_hmac_secret_len)      \
  X(fido_assert_hmac_secret_ptr) X(fido_assert_new) X(fido_assert_set_clientdata_hash) X(fido_assert_set_extensions)         \
  X(fido_assert_set_hmac_salt) X(fido_assert_set_rp) X(fido_assert_set_up) X(fido_assert_set_uv) X(fido_cred_flags)           \
  X(fido_cred_free) X(fido_cred_id_len) X(fido_cred_id_ptr) X(fido_cred_new) X(fido_cred_set_clientdata_hash)                 \
  X(fido_cred_set_extensions) X(fido_cred_set_rk) X(fido_cred_set_rp) X(fido_cred_set_type) X(fido_cred_set_user)             \
  X(fido_cred_set_uv) X(fido_dev_close) X(fido_dev_free) X(fido_dev_get_assert) X(fido_dev_info_free)                         \
  X(fido_dev_info_manifest) X(fido_dev_info_manufacturer_string) X(fido_dev_info_new) X(fido_dev_info_path)                   \
  X(fido_dev_info_product_string) X(fido_dev_info_ptr) X(fido_dev_is_fido2) X(fido_dev_make_cred) X(fido_dev_new)             \
  X(fido_dev_open) X(fido_dev_set_io_functions) X(fido_dev_set_timeout) X(fido_init) X(fido_strerr)

/* tpm2-tss: one list per library, since each symbol is looked up in the library that has it. */
#define VAULT_ESYS_LIB "libtss2-esys.so.0"
#define VAULT_ESYS_CALLS(X)                                                                                                    \
  X(Esys_Create) X(Esys_CreatePrimary) X(Esys_Finalize) X(Esys_FlushContext) X(Esys_Free) X(Esys_Initialize) X(Esys_Load)     \
  X(Esys_PolicyAuthValue) X(Esys_PolicyGetDigest) X(Esys_PolicyPCR) X(Esys_StartAuthSession) X(Esys_Startup)                  \
  X(Esys_TRSess_SetAttributes) X(Esys_TR_SetAuth) X(Esys_Unseal)
#define VAULT_MU_LIB "libtss2-mu.so.0"
#define VAULT_MU_CALLS(X)                                                                                                      \
  X(Tss2_MU_TPM2B_PRIVATE_Marshal) X(Tss2_MU_TPM2B_PRIVATE_Unmarshal) X(Tss2_MU_TPM2B_PUBLIC_Marshal) X(Tss2_MU_TPM2B_PUBLIC_Unmarshal)
#define VAULT_RC_LIB "libtss2-rc.so.0"
#define VAULT_RC_CALLS(X) X(Tss2_RC_Decode)
#define VAULT_TCTILDR_LIB "libtss2-tctildr.so.0"
#define VAULT_TCTILDR_CALLS(X) X(Tss2_TctiLdr_Finalize) X(Tss2_TctiLdr_Initialize)

#define VAULT_TOKEN_PTR(f) extern __typeof__(&f) vault_call_##f;
VAULT_FIDO2_CALLS(VAULT_TOKEN_PTR)
VAULT_ESYS_CALLS(VAULT_TOKEN_PTR)
VAULT_MU_CALLS(VAULT_TOKEN_PTR)
VAULT_RC_CALLS(VAULT_TOKEN_PTR)
VAULT_TCTILDR_CALLS(VAULT_TOKEN_PTR)
#undef VAULT_TOKEN_PTR

/* Opens libfido2 (once) and fills its pointers: true, or false with why (dlerror, and the Debian
   package to install) in `why`. */
bool vault_fido2_lib(char *why, size_t cap);
/* The same for tpm2-tss's four libraries. */
bool vault_tpm2_lib(char *why, size_t cap);

#endif
