/*
 * xts_core: XTS-AES-256 over runs of whole sectors, in place, through the OpenSSL inside the node
 * binary (no libcrypto is linked: the EVP symbols resolve against node at dlopen time).
 *
 * Sector i of a run (from 0) is one XTS data unit (IEEE 1619) whose tweak is
 * first_tweak + i * tweak_step, as a 128-bit little-endian number (spec/format.md §8). The caller
 * guarantees that the last tweak fits in 64 bits; the arithmetic wraps modulo 2^64 otherwise.
 *
 * No N-API, no globals beyond a once-fetched cipher: safe to call from any thread. A context is
 * used by one thread at a time (each volume server worker owns one).
 */
#ifndef VAULT_XTS_CORE_H
#define VAULT_XTS_CORE_H

#include <stddef.h>
#include <stdint.h>

#define VAULT_XTS_KEY_LEN 64 /* key1 || key2, two AES-256 keys */
#define VAULT_XTS_BLOCK 16
/* OpenSSL refuses XTS data units above 2^20 blocks (the IEEE 1619 limit). */
#define VAULT_XTS_MAX_SECTOR (VAULT_XTS_BLOCK << 20)

/* A keyed context: the key schedules for both directions, expanded once. Opaque. */
typedef struct vault_xts_ctx vault_xts_ctx;

/*
 * Keys a new context. Returns NULL on failure: key halves equal (IEEE 1619-2018 forbids it and
 * OpenSSL refuses it), out of memory, or an OpenSSL error. The context holds expanded key
 * schedules in OpenSSL's heap memory; vault_xts_ctx_free cleanses them.
 */
vault_xts_ctx *vault_xts_ctx_new(const uint8_t key[VAULT_XTS_KEY_LEN]);

/* Cleanses and frees. NULL-safe. */
void vault_xts_ctx_free(vault_xts_ctx *ctx);

/*
 * Encrypts (encrypt != 0) or decrypts `len` bytes of `buf` in place: len / sector_size sectors.
 * sector_size must be a multiple of 16 in [16, VAULT_XTS_MAX_SECTOR] and len a multiple of it
 * (len 0 is a no-op). Returns 0, or -1 on bad arguments or an OpenSSL failure (then the buffer
 * contents are unspecified). Only the IV is re-initialised per sector.
 */
int vault_xts_run(vault_xts_ctx *ctx, uint8_t *buf, size_t len, size_t sector_size, uint64_t first_tweak,
                  uint64_t tweak_step, int encrypt);

/* One-shot: vault_xts_ctx_new + vault_xts_run + vault_xts_ctx_free. Returns 0 or -1. */
int vault_xts_sectors(const uint8_t key[VAULT_XTS_KEY_LEN], uint8_t *buf, size_t len, size_t sector_size,
                      uint64_t first_tweak, uint64_t tweak_step, int encrypt);

#endif
