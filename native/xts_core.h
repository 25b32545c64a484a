/*
 * xts_core: XTS-AES-256 over runs of whole sectors, in place, through the OpenSSL inside the node
 * binary (no libcrypto is linked: the EVP symbols resolve against node at dlopen time). The one
 * implementation behind both users: xts()/xtsAsync() for JS and the volume server's workers.
 *
 * Sector i of a run (from 0) is one XTS data unit (IEEE 1619) whose tweak is
 * first_tweak + i * tweak_step, as a 128-bit little-endian number (spec/format.md §8). The caller
 * guarantees that the last tweak fits in 64 bits; the arithmetic wraps modulo 2^64 otherwise.
 *
 * Two ways to run, picked by sector size (see xts_core.c): sectors up to VAULT_XTS_ECB_MAX_SECTOR
 * bytes are computed here on top of AES-256-ECB, larger ones go through OpenSSL's AES-256-XTS.
 *
 * No N-API, no globals beyond once-fetched ciphers and a per-thread error message: safe to call
 * from any thread. A context is used by one thread at a time (each volume server worker owns one;
 * vault_native makes one per call).
 */
#ifndef VAULT_XTS_CORE_H
#define VAULT_XTS_CORE_H

#include <stddef.h>
#include <stdint.h>

#define VAULT_XTS_KEY_LEN 64 /* key1 || key2, two AES-256 keys */
#define VAULT_XTS_BLOCK 16
/* OpenSSL refuses XTS data units above 2^20 blocks (the IEEE 1619 limit). */
#define VAULT_XTS_MAX_SECTOR (VAULT_XTS_BLOCK << 20)
/* Sector sizes up to this take the AES-ECB based path, larger ones OpenSSL's XTS (measured). */
#define VAULT_XTS_ECB_MAX_SECTOR 1024

/* A keyed context: every key schedule either path needs, expanded once. Opaque. */
typedef struct vault_xts_ctx vault_xts_ctx;

/*
 * Keys a new context: OpenSSL AES-256-XTS contexts for encryption and for decryption, and the
 * AES-256-ECB contexts of the small-sector path (key1 encrypt, key1 decrypt, key2 encrypt).
 * Returns NULL on failure (vault_xts_error() says why): key halves equal (IEEE 1619-2018 forbids
 * it and OpenSSL refuses it), out of memory, or an OpenSSL error. The context holds expanded key
 * schedules in OpenSSL's heap memory; vault_xts_ctx_free cleanses them.
 */
vault_xts_ctx *vault_xts_ctx_new(const uint8_t key[VAULT_XTS_KEY_LEN]);

/* Cleanses and frees. NULL-safe. */
void vault_xts_ctx_free(vault_xts_ctx *ctx);

/*
 * Encrypts (encrypt != 0) or decrypts `len` bytes of `buf` in place: len / sector_size sectors.
 * sector_size must be a multiple of 16 in [16, VAULT_XTS_MAX_SECTOR] and len a multiple of it
 * (len 0 is a no-op). Returns 0, or -1 on bad arguments or an OpenSSL failure (then
 * vault_xts_error() says which, and the buffer contents are unspecified).
 */
int vault_xts_run(vault_xts_ctx *ctx, uint8_t *buf, size_t len, size_t sector_size, uint64_t first_tweak,
                  uint64_t tweak_step, int encrypt);

/* One-shot: vault_xts_ctx_new + vault_xts_run + vault_xts_ctx_free. Returns 0 or -1. */
int vault_xts_sectors(const uint8_t key[VAULT_XTS_KEY_LEN], uint8_t *buf, size_t len, size_t sector_size,
                      uint64_t first_tweak, uint64_t tweak_step, int encrypt);

/*
 * What the last failing vault_xts_* call on this thread failed on, e.g. "OpenSSL
 * EVP_CipherUpdate failed: <OpenSSL's reason>" (the OpenSSL error queue itself is left clean).
 * Thread-local; valid until the next failure on the same thread.
 */
const char *vault_xts_error(void);

#endif
