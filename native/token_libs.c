/* Opening libfido2 and tpm2-tss at their first use; see token_libs.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "token_libs.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define VAULT_TOKEN_DEF(f) __typeof__(&f) vault_call_##f;
VAULT_FIDO2_CALLS(VAULT_TOKEN_DEF)
VAULT_ESYS_CALLS(VAULT_TOKEN_DEF)
VAULT_MU_CALLS(VAULT_TOKEN_DEF)
VAULT_RC_CALLS(VAULT_TOKEN_DEF)
VAULT_TCTILDR_CALLS(VAULT_TOKEN_DEF)
#undef VAULT_TOKEN_DEF

/* RTLD_LOCAL: nothing of theirs joins the global scope. Their OpenSSL calls still bind to node's
   own OpenSSL first, as when the addon linked them (binding.gyp). The handles are never closed. */
static void *open_lib(const char *name, char *err, size_t cap) {
  void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) snprintf(err, cap, "%s", dlerror());
  return h;
}

#define VAULT_TOKEN_SYM(f)                                                                                                     \
  if (ok && (vault_call_##f = (__typeof__(&f))dlsym(h, #f)) == NULL) {                                                         \
    snprintf(err, sizeof err, "%s has no %s", lib, #f);                                                                       \
    ok = false;                                                                                                                \
  }

static bool fido2_ok;
static char fido2_err[320];
static void load_fido2(void) {
  char err[256] = "";
  const char *lib = VAULT_FIDO2_LIB;
  void *h = open_lib(lib, err, sizeof err);
  bool ok = h != NULL;
  VAULT_FIDO2_CALLS(VAULT_TOKEN_SYM)
  fido2_ok = ok;
  if (!ok) snprintf(fido2_err, sizeof fido2_err, "libfido2 cannot be loaded (%s): install the Debian package libfido2-1", err);
}

static bool tpm2_ok;
static char tpm2_err[320];
static void load_tpm2(void) {
  char err[256] = "";
  bool ok = true;
  const char *lib = VAULT_ESYS_LIB;
  void *h = open_lib(lib, err, sizeof err);
  ok = h != NULL;
  VAULT_ESYS_CALLS(VAULT_TOKEN_SYM)
  if (ok && (h = open_lib(lib = VAULT_MU_LIB, err, sizeof err)) == NULL) ok = false;
  VAULT_MU_CALLS(VAULT_TOKEN_SYM)
  if (ok && (h = open_lib(lib = VAULT_RC_LIB, err, sizeof err)) == NULL) ok = false;
  VAULT_RC_CALLS(VAULT_TOKEN_SYM)
  if (ok && (h = open_lib(lib = VAULT_TCTILDR_LIB, err, sizeof err)) == NULL) ok = false;
  VAULT_TCTILDR_CALLS(VAULT_TOKEN_SYM)
  tpm2_ok = ok;
  if (!ok)
    snprintf(tpm2_err, sizeof tpm2_err,
             "tpm2-tss cannot be loaded (%s): install the Debian packages libtss2-esys-3.0.2-0, libtss2-mu0, libtss2-rc0 and "
             "libtss2-tctildr0",
             err);
}

static pthread_once_t fido2_once = PTHREAD_ONCE_INIT;
static pthread_once_t tpm2_once = PTHREAD_ONCE_INIT;

bool vault_fido2_lib(char *why, size_t cap) {
  pthread_once(&fido2_once, load_fido2);
  if (!fido2_ok && why != NULL) snprintf(why, cap, "%s", fido2_err);
  return fido2_ok;
}

bool vault_tpm2_lib(char *why, size_t cap) {
  pthread_once(&tpm2_once, load_tpm2);
  if (!tpm2_ok && why != NULL) snprintf(why, cap, "%s", tpm2_err);
  return tpm2_ok;
}
