/* XTS-AES-256 over whole sectors through OpenSSL EVP; see xts_core.h. */
#include "xts_core.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
#error "expected the OpenSSL 3 headers shipped with node (build with --nodedir pointing at node's headers)"
#endif

struct vault_xts_ctx {
  EVP_CIPHER_CTX *enc; /* keyed for encryption */
  EVP_CIPHER_CTX *dec; /* keyed for decryption (AES decryption uses a different key schedule) */
};

/* EVP_aes_256_xts() is a legacy handle that OpenSSL 3 resolves with an implicit fetch on every key
   init. Fetch once per process instead; a fetched EVP_CIPHER is immutable and shareable across
   threads, and is deliberately kept for the life of the process. */
static EVP_CIPHER *xts_fetched;
static pthread_once_t xts_fetch_once = PTHREAD_ONCE_INIT;

static void xts_fetch(void) {
  xts_fetched = EVP_CIPHER_fetch(NULL, "AES-256-XTS", NULL);
  ERR_clear_error(); /* on failure, fall back to the implicit fetch */
}

static const EVP_CIPHER *xts_cipher(void) {
  pthread_once(&xts_fetch_once, xts_fetch);
  return xts_fetched != NULL ? xts_fetched : EVP_aes_256_xts();
}

vault_xts_ctx *vault_xts_ctx_new(const uint8_t key[VAULT_XTS_KEY_LEN]) {
  vault_xts_ctx *ctx;
  if (CRYPTO_memcmp(key, key + VAULT_XTS_KEY_LEN / 2, VAULT_XTS_KEY_LEN / 2) == 0) return NULL;
  ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return NULL;
  ctx->enc = EVP_CIPHER_CTX_new();
  ctx->dec = EVP_CIPHER_CTX_new();
  if (ctx->enc == NULL || ctx->dec == NULL ||
      EVP_CipherInit_ex(ctx->enc, xts_cipher(), NULL, key, NULL, 1) != 1 ||
      EVP_CipherInit_ex(ctx->dec, xts_cipher(), NULL, key, NULL, 0) != 1) {
    ERR_clear_error();
    vault_xts_ctx_free(ctx);
    return NULL;
  }
  return ctx;
}

void vault_xts_ctx_free(vault_xts_ctx *ctx) {
  if (ctx == NULL) return;
  EVP_CIPHER_CTX_free(ctx->enc); /* NULL-safe; cleanses the key schedule */
  EVP_CIPHER_CTX_free(ctx->dec);
  free(ctx);
}

int vault_xts_run(vault_xts_ctx *ctx, uint8_t *buf, size_t len, size_t sector_size, uint64_t first_tweak,
                  uint64_t tweak_step, int encrypt) {
  EVP_CIPHER_CTX *c;
  unsigned char iv[VAULT_XTS_BLOCK] = {0};
  uint64_t tweak = first_tweak;
  int outl = 0;
  if (ctx == NULL || sector_size < VAULT_XTS_BLOCK || sector_size % VAULT_XTS_BLOCK != 0 ||
      sector_size > VAULT_XTS_MAX_SECTOR || len % sector_size != 0)
    return -1;
  c = encrypt ? ctx->enc : ctx->dec;
  for (size_t off = 0; off < len; off += sector_size, tweak += tweak_step) {
    /* The data unit number as a 128-bit little-endian integer; ours fit in 64 bits, so iv[8..15]
       stay zero. */
    for (int b = 0; b < 8; b++) iv[b] = (unsigned char)(tweak >> (8 * b));
    /* IV only (key NULL, enc -1: unchanged): no key expansion per sector. */
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, -1) != 1 ||
        EVP_CipherUpdate(c, buf + off, &outl, buf + off, (int)sector_size) != 1 || outl != (int)sector_size) {
      ERR_clear_error();
      return -1;
    }
  }
  /* No EVP_CipherFinal_ex: XTS keeps no state between updates; each one is a whole data unit. */
  return 0;
}

int vault_xts_sectors(const uint8_t key[VAULT_XTS_KEY_LEN], uint8_t *buf, size_t len, size_t sector_size,
                      uint64_t first_tweak, uint64_t tweak_step, int encrypt) {
  vault_xts_ctx *ctx = vault_xts_ctx_new(key);
  int r;
  if (ctx == NULL) return -1;
  r = vault_xts_run(ctx, buf, len, sector_size, first_tweak, tweak_step, encrypt);
  vault_xts_ctx_free(ctx);
  return r;
}
