/* tpm2: see tpm2.h. */
#include "tpm2.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>
#include "token_calls.h" /* last: every tpm2-tss call through its pointer */

/* systemd 252's primary key template (tpm2-util.c, tpm2_make_primary, ECC): the primary key is
   derived from the owner seed and this template, so it must match byte for byte for systemd's
   tokens to load. */
static const TPM2B_PUBLIC PRIMARY_ECC = {
    .size = sizeof(TPMT_PUBLIC),
    .publicArea =
        {
            .type = TPM2_ALG_ECC,
            .nameAlg = TPM2_ALG_SHA256,
            .objectAttributes = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
                                TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH,
            .parameters.eccDetail =
                {
                    .symmetric = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB},
                    .scheme.scheme = TPM2_ALG_NULL,
                    .curveID = TPM2_ECC_NIST_P256,
                    .kdf.scheme = TPM2_ALG_NULL,
                },
        },
};

/* Parameter encryption of the sessions salted with the primary key. */
static const TPMT_SYM_DEF AES128CFB = {.algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB};
static const TPMT_SYM_DEF SYM_NULL = {.algorithm = TPM2_ALG_NULL};

typedef struct {
  TSS2_TCTI_CONTEXT *tcti;
  ESYS_CONTEXT *esys;
  ESYS_TR primary, object, hmac, policy;
} tpm_conn;

__attribute__((format(printf, 4, 5))) static vault_tpm2_status fail(vault_tpm2_job *j, vault_tpm2_status st, TSS2_RC rc,
                                                                     const char *fmt, ...) {
  char what[224];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  j->rc = rc;
  if (rc != 0)
    snprintf(j->err, sizeof j->err, "%s (tpm2-tss: %s, 0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
  else
    snprintf(j->err, sizeof j->err, "%s", what);
  return st;
}

/* The TPM's own response code without the handle/session/parameter number, or 0 for a code from
   a software layer (tpm2-tss, the TCTI). */
static uint32_t tpm_code(TSS2_RC rc) {
  uint32_t layer = rc & TSS2_RC_LAYER_MASK;
  if (rc == 0 || (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)) return 0;
  rc &= 0xffff;
  return (rc & TPM2_RC_FMT1) ? (rc & (TPM2_RC_FMT1 | 0x3f)) : rc;
}

static bool tcti_failed(TSS2_RC rc) {
  return (rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER;
}

/* What a failure of the TPM while using the sealed object means. */
static vault_tpm2_status classify(TSS2_RC rc) {
  switch (tpm_code(rc)) {
    case TPM2_RC_POLICY_FAIL:
    case TPM2_RC_VALUE:
      return VAULT_TPM2_POLICY;
    case TPM2_RC_AUTH_FAIL:
    case TPM2_RC_BAD_AUTH:
      return VAULT_TPM2_AUTH;
    case TPM2_RC_LOCKOUT:
      return VAULT_TPM2_LOCKOUT;
    default:
      return tcti_failed(rc) ? VAULT_TPM2_UNAVAILABLE : VAULT_TPM2_FAILED;
  }
}

static vault_tpm2_status lost(vault_tpm2_job *j, TSS2_RC rc, const char *what) {
  if (tcti_failed(rc)) return fail(j, VAULT_TPM2_UNAVAILABLE, rc, "the TPM stopped answering (%s)", what);
  return fail(j, VAULT_TPM2_FAILED, rc, "the TPM refused %s", what);
}

static void conn_close(tpm_conn *t) {
  const ESYS_TR handles[] = {t->policy, t->hmac, t->object, t->primary};
  if (t->esys != NULL) {
    /* ESAPI keeps the object's authValue (the PIN's hash) in its resource node, freed unwiped:
       overwrite it first (the assignment copies the whole zeroed TPM2B). */
    if (t->object != ESYS_TR_NONE) (void)Esys_TR_SetAuth(t->esys, t->object, &(TPM2B_AUTH){0});
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
      if (handles[i] != ESYS_TR_NONE) (void)Esys_FlushContext(t->esys, handles[i]); /* best effort */
    Esys_Finalize(&t->esys);
  }
  if (t->tcti != NULL) Tss2_TctiLdr_Finalize(&t->tcti);
  t->policy = t->hmac = t->object = t->primary = ESYS_TR_NONE;
}

static vault_tpm2_status conn_open(tpm_conn *t, vault_tpm2_job *j) {
  TSS2_RC rc;
  char where[VAULT_TPM2_TCTI_MAX + 32];
  *t = (tpm_conn){.primary = ESYS_TR_NONE, .object = ESYS_TR_NONE, .hmac = ESYS_TR_NONE, .policy = ESYS_TR_NONE};
  if (j->tcti[0] != '\0')
    snprintf(where, sizeof where, "at TCTI '%s'", j->tcti);
  else
    snprintf(where, sizeof where, "(tpm2-tss looked for /dev/tpmrm0, /dev/tpm0 and a simulator on localhost:2321)");
  rc = Tss2_TctiLdr_Initialize(j->tcti[0] != '\0' ? j->tcti : NULL, &t->tcti);
  if (rc == TSS2_TCTI_RC_NOT_SUPPORTED || rc == TSS2_TCTI_RC_BAD_VALUE)
    return fail(j, VAULT_TPM2_UNAVAILABLE, rc, "tpm2-tss cannot load a TPM driver %s: check the TCTI's name and that its library (libtss2-tcti-<name>0) is installed", where);
  if (rc != TSS2_RC_SUCCESS) return fail(j, VAULT_TPM2_UNAVAILABLE, rc, "no TPM answers %s", where);
  rc = Esys_Initialize(&t->esys, t->tcti, NULL);
  if (rc != TSS2_RC_SUCCESS) return fail(j, VAULT_TPM2_UNAVAILABLE, rc, "no TPM answers %s", where);
  /* Started already (by the firmware, or swtpm's startup-clear) is the usual answer. */
  rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
  if (rc != TSS2_RC_SUCCESS && tpm_code(rc) != TPM2_RC_INITIALIZE)
    return fail(j, tcti_failed(rc) || tpm_code(rc) == 0 ? VAULT_TPM2_UNAVAILABLE : VAULT_TPM2_FAILED, rc,
                "no TPM answers %s", where);
  rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                          &(TPM2B_SENSITIVE_CREATE){0}, &PRIMARY_ECC, &(TPM2B_DATA){0}, &(TPML_PCR_SELECTION){0},
                          &t->primary, NULL, NULL, NULL, NULL);
  if (rc != TSS2_RC_SUCCESS) {
    t->primary = ESYS_TR_NONE;
    if (tpm_code(rc) == TPM2_RC_BAD_AUTH || tpm_code(rc) == TPM2_RC_AUTH_FAIL)
      return fail(j, VAULT_TPM2_FAILED, rc, "the TPM's owner hierarchy has a password; sealing needs its empty authorization");
    if (tpm_code(rc) == TPM2_RC_LOCKOUT) return fail(j, VAULT_TPM2_LOCKOUT, rc, "the TPM is in dictionary-attack lockout");
    return lost(j, rc, "to create the primary storage key");
  }
  return VAULT_TPM2_OK;
}

/* A session salted with the primary key (so its key never crosses the TCTI), with AES-128-CFB
   parameter encryption. */
static TSS2_RC salted_session(tpm_conn *t, TPM2_SE type, TPMA_SESSION attrs, ESYS_TR *out) {
  TSS2_RC rc = Esys_StartAuthSession(t->esys, t->primary, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                     type, &AES128CFB, TPM2_ALG_SHA256, out);
  if (rc != TSS2_RC_SUCCESS) {
    *out = ESYS_TR_NONE;
    return rc;
  }
  return Esys_TRSess_SetAttributes(t->esys, *out, attrs | TPMA_SESSION_CONTINUESESSION, 0xff);
}

/* The object's policy, in a trial or a real policy session: PolicyPCR over the selected PCRs'
   current values (an empty pcrDigest: the TPM reads them), then PolicyAuthValue with a PIN. */
static TSS2_RC run_policy(tpm_conn *t, ESYS_TR session, const vault_tpm2_job *j) {
  TSS2_RC rc = TSS2_RC_SUCCESS;
  if (j->pcr_mask != 0) {
    TPML_PCR_SELECTION sel = {.count = 1};
    sel.pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel.pcrSelections[0].sizeofSelect = 3;
    for (int i = 0; i < 3; i++) sel.pcrSelections[0].pcrSelect[i] = (uint8_t)(j->pcr_mask >> (8 * i));
    rc = Esys_PolicyPCR(t->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &(TPM2B_DIGEST){0}, &sel);
  }
  if (rc == TSS2_RC_SUCCESS && j->has_pin) rc = Esys_PolicyAuthValue(t->esys, session, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE);
  return rc;
}

static vault_tpm2_status compute_policy(tpm_conn *t, vault_tpm2_job *j, TPM2B_DIGEST *out) {
  ESYS_TR trial = ESYS_TR_NONE;
  TPM2B_DIGEST *d = NULL;
  TSS2_RC rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                     TPM2_SE_TRIAL, &SYM_NULL, TPM2_ALG_SHA256, &trial);
  if (rc != TSS2_RC_SUCCESS) return lost(j, rc, "to start a trial policy session");
  rc = run_policy(t, trial, j);
  if (rc == TSS2_RC_SUCCESS) rc = Esys_PolicyGetDigest(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &d);
  (void)Esys_FlushContext(t->esys, trial);
  if (rc != TSS2_RC_SUCCESS) {
    if (tpm_code(rc) == TPM2_RC_VALUE || tpm_code(rc) == TPM2_RC_PCR)
      return fail(j, VAULT_TPM2_FAILED, rc, "the TPM has no sha256 bank with those PCRs");
    return lost(j, rc, "to compute the PCR policy");
  }
  *out = *d;
  Esys_Free(d);
  return VAULT_TPM2_OK;
}

vault_tpm2_status vault_tpm2_seal(vault_tpm2_job *j) {
  tpm_conn t;
  TPM2B_DIGEST policy = {0};
  TPM2B_SENSITIVE_CREATE sens = {0};
  TPM2B_PRIVATE *priv = NULL;
  TPM2B_PUBLIC *pub = NULL;
  TSS2_RC rc;
  size_t off;
  vault_tpm2_status st = conn_open(&t, j);
  if (st != VAULT_TPM2_OK) goto out;
  st = compute_policy(&t, j, &policy);
  if (st != VAULT_TPM2_OK) goto out;
  rc = salted_session(&t, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT | TPMA_SESSION_ENCRYPT, &t.hmac);
  if (rc != TSS2_RC_SUCCESS) {
    st = lost(j, rc, "to start an encrypted session");
    goto out;
  }
  TPM2B_PUBLIC tmpl = {
      .publicArea =
          {
              .type = TPM2_ALG_KEYEDHASH,
              .nameAlg = TPM2_ALG_SHA256,
              .objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT,
              .parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL,
              .authPolicy = policy,
          },
  };
  sens.sensitive.data.size = (uint16_t)j->secret_len;
  memcpy(sens.sensitive.data.buffer, j->secret, j->secret_len);
  if (j->has_pin) {
    sens.sensitive.userAuth.size = sizeof j->auth;
    memcpy(sens.sensitive.userAuth.buffer, j->auth, sizeof j->auth);
  }
  rc = Esys_Create(t.esys, t.primary, t.hmac, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &(TPM2B_DATA){0},
                   &(TPML_PCR_SELECTION){0}, &priv, &pub, NULL, NULL, NULL);
  OPENSSL_cleanse(&sens, sizeof sens);
  if (rc != TSS2_RC_SUCCESS) {
    st = lost(j, rc, "to seal the secret");
    goto out;
  }
  off = 0;
  rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, j->priv, sizeof j->priv, &off);
  j->priv_len = off;
  off = 0;
  if (rc == TSS2_RC_SUCCESS) rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, j->pub, sizeof j->pub, &off);
  j->pub_len = off;
  if (rc != TSS2_RC_SUCCESS) {
    st = fail(j, VAULT_TPM2_FAILED, rc, "cannot marshal the sealed object");
    goto out;
  }
  memcpy(j->policy, policy.buffer, policy.size);
  j->policy_len = policy.size;
out:
  if (priv != NULL) OPENSSL_cleanse(priv, sizeof *priv);
  Esys_Free(priv);
  Esys_Free(pub);
  conn_close(&t);
  return st;
}

/* Unmarshals the caller's blobs: the whole of each, a sealed data object and nothing else. */
static vault_tpm2_status parse_blobs(vault_tpm2_job *j, TPM2B_PRIVATE *priv, TPM2B_PUBLIC *pub) {
  size_t off = 0;
  TSS2_RC rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(j->priv, j->priv_len, &off, priv);
  if (rc != TSS2_RC_SUCCESS || off != j->priv_len)
    return fail(j, VAULT_TPM2_BLOB, rc, "the sealed private blob is damaged (not one marshalled TPM2B_PRIVATE)");
  off = 0;
  rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(j->pub, j->pub_len, &off, pub);
  if (rc != TSS2_RC_SUCCESS || off != j->pub_len)
    return fail(j, VAULT_TPM2_BLOB, rc, "the sealed public blob is damaged (not one marshalled TPM2B_PUBLIC)");
  if (pub->publicArea.type != TPM2_ALG_KEYEDHASH || pub->publicArea.nameAlg != TPM2_ALG_SHA256 ||
      (pub->publicArea.objectAttributes & TPMA_OBJECT_USERWITHAUTH) != 0)
    return fail(j, VAULT_TPM2_BLOB, 0, "the sealed public blob is not a policy-bound sealed data object");
  return VAULT_TPM2_OK;
}

vault_tpm2_status vault_tpm2_unseal(vault_tpm2_job *j) {
  tpm_conn t = {.primary = ESYS_TR_NONE, .object = ESYS_TR_NONE, .hmac = ESYS_TR_NONE, .policy = ESYS_TR_NONE};
  TPM2B_PRIVATE priv = {0};
  TPM2B_PUBLIC pub = {0}; /* Tss2_MU refuses to unmarshal a TPM2B_PUBLIC into a non-zero size */
  TPM2B_SENSITIVE_DATA *data = NULL;
  TSS2_RC rc;
  vault_tpm2_status st = parse_blobs(j, &priv, &pub);
  if (st != VAULT_TPM2_OK) return st;
  st = conn_open(&t, j);
  if (st != VAULT_TPM2_OK) goto out;
  rc = Esys_Load(t.esys, t.primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &t.object);
  if (rc != TSS2_RC_SUCCESS) {
    t.object = ESYS_TR_NONE;
    st = tcti_failed(rc) ? lost(j, rc, "to load the sealed object")
                         : fail(j, VAULT_TPM2_BLOB, rc,
                                "the TPM refuses the sealed object: it is damaged, or was sealed by another TPM "
                                "or before this TPM was cleared");
    goto out;
  }
  if (j->has_pin) {
    TPM2B_AUTH auth = {.size = sizeof j->auth};
    memcpy(auth.buffer, j->auth, sizeof j->auth);
    rc = Esys_TR_SetAuth(t.esys, t.object, &auth);
    OPENSSL_cleanse(&auth, sizeof auth);
    if (rc != TSS2_RC_SUCCESS) {
      st = fail(j, VAULT_TPM2_FAILED, rc, "cannot set the PIN");
      goto out;
    }
  }
  /* A PCR extended between PolicyPCR and Unseal (TPM2_RC_PCR_CHANGED): start over, as systemd does. */
  for (int attempt = 0;; attempt++) {
    rc = salted_session(&t, TPM2_SE_POLICY, TPMA_SESSION_ENCRYPT, &t.policy);
    if (rc != TSS2_RC_SUCCESS) {
      st = lost(j, rc, "to start a policy session");
      goto out;
    }
    rc = run_policy(&t, t.policy, j);
    if (rc == TSS2_RC_SUCCESS) rc = Esys_Unseal(t.esys, t.object, t.policy, ESYS_TR_NONE, ESYS_TR_NONE, &data);
    if (tpm_code(rc) != TPM2_RC_PCR_CHANGED || attempt == 2) break;
    (void)Esys_FlushContext(t.esys, t.policy);
    t.policy = ESYS_TR_NONE;
  }
  switch (rc == TSS2_RC_SUCCESS ? VAULT_TPM2_OK : classify(rc)) {
    case VAULT_TPM2_OK:
      break;
    case VAULT_TPM2_POLICY:
      st = fail(j, VAULT_TPM2_POLICY, rc, "the TPM refuses to unseal: the PCR policy does not hold (a measured PCR changed)");
      goto out;
    case VAULT_TPM2_AUTH:
      st = fail(j, VAULT_TPM2_AUTH, rc, "the TPM refuses to unseal: wrong PIN");
      goto out;
    case VAULT_TPM2_LOCKOUT:
      st = fail(j, VAULT_TPM2_LOCKOUT, rc, "the TPM is in dictionary-attack lockout after too many wrong PINs");
      goto out;
    default:
      st = lost(j, rc, "to unseal");
      goto out;
  }
  if (data->size == 0 || data->size > sizeof j->secret) {
    st = fail(j, VAULT_TPM2_BLOB, 0, "the sealed object holds %u bytes, not a secret of 1 to %d bytes", data->size,
              VAULT_TPM2_MAX_SECRET);
    goto out;
  }
  memcpy(j->secret, data->buffer, data->size);
  j->secret_len = data->size;
out:
  if (data != NULL) OPENSSL_cleanse(data, sizeof *data);
  Esys_Free(data);
  conn_close(&t);
  return st;
}
