/*
 * tpm2: seal a short secret to a TPM 2.0 under a PCR policy (and optionally a PIN), and unseal it,
 * through tpm2-tss's ESAPI (Debian: libtss2-dev). The sealed object is the one systemd-cryptenroll
 * (v252) makes, so its tokens unseal here too:
 *
 *  - parent: a transient primary key made from systemd's ECC template (NIST P-256 restricted
 *    storage key, AES-128-CFB) in the owner hierarchy, with the empty owner authorization;
 *  - object: KEYEDHASH, nameAlg SHA-256, fixedTPM|fixedParent, no userWithAuth (only its policy
 *    opens it), sensitive data = the secret, authValue = SHA-256(PIN) when there is a PIN;
 *  - policy: PolicyPCR(sha256 bank, the selected PCRs' values at sealing) when PCRs are selected,
 *    then PolicyAuthValue when there is a PIN.
 *
 * The secret and the PIN cross the TCTI only encrypted (sessions salted with the primary key,
 * parameter encryption with AES-128-CFB). No N-API here: the binding (tpm2_napi.c) runs these on
 * the libuv threadpool.
 */
#ifndef VAULT_TPM2_H
#define VAULT_TPM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VAULT_TPM2_MAX_SECRET 128 /* MAX_SYM_DATA: the most a sealed data object holds */
#define VAULT_TPM2_MAX_BLOB 1024  /* more than a marshalled TPM2B_PUBLIC or TPM2B_PRIVATE can be */
#define VAULT_TPM2_PCR_COUNT 24
#define VAULT_TPM2_TCTI_MAX 256

typedef enum {
  VAULT_TPM2_OK = 0,
  VAULT_TPM2_UNAVAILABLE, /* no TPM answered at that TCTI */
  VAULT_TPM2_POLICY,      /* the policy does not hold: a selected PCR changed */
  VAULT_TPM2_AUTH,        /* wrong PIN */
  VAULT_TPM2_LOCKOUT,     /* the TPM is in dictionary-attack lockout */
  VAULT_TPM2_BLOB,        /* the blobs do not parse, or the TPM refuses to load them */
  VAULT_TPM2_FAILED,      /* anything else the TPM or tpm2-tss reported */
} vault_tpm2_status;

/* One seal or unseal. Lives in locked memory (vault_secure_alloc) and is wiped when freed. */
typedef struct {
  char tcti[VAULT_TPM2_TCTI_MAX]; /* "swtpm:host=...,port=..."; empty: tpm2-tss's default search */
  uint32_t pcr_mask;              /* bit i: PCR i of the sha256 bank */
  bool has_pin;
  uint8_t auth[32];               /* SHA-256 of the PIN's bytes */
  uint8_t secret[VAULT_TPM2_MAX_SECRET];
  size_t secret_len;              /* seal: input; unseal: output */
  uint8_t pub[VAULT_TPM2_MAX_BLOB]; /* marshalled TPM2B_PUBLIC (seal: output; unseal: input) */
  size_t pub_len;
  uint8_t priv[VAULT_TPM2_MAX_BLOB]; /* marshalled TPM2B_PRIVATE */
  size_t priv_len;
  uint8_t policy[64];             /* seal: the object's policy digest */
  size_t policy_len;
  uint32_t rc;                    /* the failing tpm2-tss/TPM response code, 0 if none */
  char err[320];                  /* what went wrong, for people */
} vault_tpm2_job;

vault_tpm2_status vault_tpm2_seal(vault_tpm2_job *j);
vault_tpm2_status vault_tpm2_unseal(vault_tpm2_job *j);

#endif
