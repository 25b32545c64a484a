/* dm-crypt CBC and XTS with the plain, plain64 and essiv:sha256 IVs; see dm_crypt.h. */
#include "dm_crypt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#define MAX_BLOCK 16

struct dm_crypt_ctx {
  dm_iv_mode iv;
  int mode;
  size_t block;
  gcry_cipher_hd_t data;  /* CBC or XTS, the volume key */
  gcry_cipher_hd_t essiv; /* ECB, SHA-256(volume key); essiv:sha256 only */
};

static const struct {
  const char *name;
  int algo[3]; /* 128-, 192-, 256-bit keys; 0 where the cipher has no such size */
} FAMILIES[] = {
    {"aes", {GCRY_CIPHER_AES128, GCRY_CIPHER_AES192, GCRY_CIPHER_AES256}},
    {"serpent", {GCRY_CIPHER_SERPENT128, GCRY_CIPHER_SERPENT192, GCRY_CIPHER_SERPENT256}},
    {"twofish", {GCRY_CIPHER_TWOFISH128, 0, GCRY_CIPHER_TWOFISH}},
    {"camellia", {GCRY_CIPHER_CAMELLIA128, GCRY_CIPHER_CAMELLIA192, GCRY_CIPHER_CAMELLIA256}},
};

static const char *const IV_NAMES[] = {[DM_IV_PLAIN] = "plain", [DM_IV_PLAIN64] = "plain64", [DM_IV_ESSIV_SHA256] = "essiv:sha256"};

static const char *const MODES[] = {"-cbc-", "-xts-"};

int dm_crypt_parse(const char *spec, dm_crypt_spec *out, char *err, size_t errlen) {
  const char *at = NULL, *iv, *slash;
  size_t fam, ivm, namelen, m;
  unsigned long bits, half;
  char *end;
  memset(out, 0, sizeof *out);
  for (m = 0; m < 2 && at == NULL; m++) at = strstr(spec, MODES[m]);
  if (at == NULL || strchr(spec, '/') == NULL) return 1;
  m--; /* the mode found */
  namelen = (size_t)(at - spec);
  for (fam = 0; fam < sizeof FAMILIES / sizeof FAMILIES[0]; fam++)
    if (strlen(FAMILIES[fam].name) == namelen && strncmp(spec, FAMILIES[fam].name, namelen) == 0) break;
  iv = at + 5;
  slash = strchr(iv, '/');
  for (ivm = 0; slash != NULL && ivm < sizeof IV_NAMES / sizeof IV_NAMES[0]; ivm++)
    if (strlen(IV_NAMES[ivm]) == (size_t)(slash - iv) && strncmp(iv, IV_NAMES[ivm], (size_t)(slash - iv)) == 0) break;
  if (fam == sizeof FAMILIES / sizeof FAMILIES[0] || slash == NULL || ivm == sizeof IV_NAMES / sizeof IV_NAMES[0] ||
      (m == 1 && ivm == DM_IV_ESSIV_SHA256)) {
    snprintf(err, errlen,
             "unknown dm-crypt spec '%s': expected <aes|serpent|twofish|camellia>-cbc-<plain|plain64|essiv:sha256>/<key bits> or -xts-<plain|plain64>/<key bits>",
             spec);
    return -1;
  }
  errno = 0;
  bits = strtoul(slash + 1, &end, 10);
  half = m == 1 ? bits / 2 : bits; /* XTS: two keys */
  if (errno != 0 || *end != '\0' || (m == 1 && bits % 2 != 0) || (half != 128 && half != 192 && half != 256) ||
      FAMILIES[fam].algo[(half - 128) / 64] == 0) {
    snprintf(err, errlen, "dm-crypt spec '%s': %s takes no %s-bit key", spec, FAMILIES[fam].name, slash + 1);
    return -1;
  }
  out->algo = FAMILIES[fam].algo[(half - 128) / 64];
  out->mode = m == 1 ? GCRY_CIPHER_MODE_XTS : GCRY_CIPHER_MODE_CBC;
  out->essiv_algo = FAMILIES[fam].algo[2];
  out->iv = (dm_iv_mode)ivm;
  out->key_bytes = bits / 8;
  return 0;
}

static gcry_cipher_hd_t open_keyed(int algo, int mode, const uint8_t *key, size_t len, int *gerr) {
  gcry_cipher_hd_t h = NULL;
  gcry_error_t e = gcry_cipher_open(&h, algo, mode, GCRY_CIPHER_SECURE);
  if (e == 0) e = gcry_cipher_setkey(h, key, len);
  if (e != 0) {
    gcry_cipher_close(h); /* NULL-safe */
    *gerr = (int)e;
    return NULL;
  }
  return h;
}

void dm_crypt_handles(const dm_crypt_ctx *ctx, const void *out[2]) {
  out[0] = ctx == NULL ? NULL : (const void *)ctx->data;
  out[1] = ctx == NULL ? NULL : (const void *)ctx->essiv;
}

dm_crypt_ctx *dm_crypt_open(const dm_crypt_spec *spec, const uint8_t *key, int *gerr) {
  dm_crypt_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    *gerr = -ENOMEM;
    return NULL;
  }
  ctx->iv = spec->iv;
  ctx->mode = spec->mode;
  ctx->block = gcry_cipher_get_algo_blklen(spec->algo);
  ctx->data = open_keyed(spec->algo, spec->mode, key, spec->key_bytes, gerr);
  if (ctx->data != NULL && spec->iv == DM_IV_ESSIV_SHA256) {
    uint8_t *salt = gcry_malloc_secure(32);
    if (salt == NULL) {
      *gerr = -ENOMEM;
    } else {
      gcry_md_hash_buffer(GCRY_MD_SHA256, salt, key, spec->key_bytes);
      ctx->essiv = open_keyed(spec->essiv_algo, GCRY_CIPHER_MODE_ECB, salt, 32, gerr);
      gcry_free(salt); /* secure memory: wiped */
    }
    if (ctx->essiv == NULL) {
      dm_crypt_close(ctx);
      return NULL;
    }
  }
  if (ctx->data == NULL) {
    dm_crypt_close(ctx);
    return NULL;
  }
  return ctx;
}

void dm_crypt_close(dm_crypt_ctx *ctx) {
  if (ctx == NULL) return;
  gcry_cipher_close(ctx->data);
  gcry_cipher_close(ctx->essiv);
  free(ctx);
}

int dm_crypt_sectors(dm_crypt_ctx *ctx, uint8_t *buf, size_t len, size_t sector, uint64_t first, uint64_t step, int encrypt) {
  uint8_t iv[MAX_BLOCK];
  gcry_error_t e = 0;
  for (size_t off = 0; e == 0 && off < len; off += sector, first += step) {
    const uint64_t s = ctx->iv == DM_IV_PLAIN ? (first & 0xffffffffu) : first;
    memset(iv, 0, sizeof iv);
    for (int b = 0; b < 8; b++) iv[b] = (uint8_t)(s >> (8 * b));
    if (ctx->iv == DM_IV_ESSIV_SHA256) e = gcry_cipher_encrypt(ctx->essiv, iv, ctx->block, NULL, 0);
    if (e == 0) e = gcry_cipher_setiv(ctx->data, iv, ctx->block);
    if (e == 0)
      e = encrypt ? gcry_cipher_encrypt(ctx->data, buf + off, sector, NULL, 0)
                  : gcry_cipher_decrypt(ctx->data, buf + off, sector, NULL, 0);
  }
  memset(iv, 0, sizeof iv);
  return (int)e;
}
