/*
 * tc_legacy: the encryption modes of TrueCrypt before 5.0, over libgcrypt's block ciphers.
 *
 *  - LRW (TrueCrypt 4.1 to 4.3): C = E(P xor T) xor T with T = K2 (x) I in GF(2^128)
 *    (x^128 + x^7 + x^2 + x + 1, big-endian bit order, as the kernel's lrw.c with
 *    gf128mul_64k_bbe), K2 = the first 16 bytes of the key area, I the block index: 1 for the
 *    header's first encrypted block, 32 * s + 1 for data sector s (dm-crypt's "lrw-benbi").
 *    64-bit block ciphers: GF(2^64) mod x^64 + x^4 + x^3 + x + 1, K2 = key[0, 8), I = 64 * s + 1.
 *    A cascade (128-bit ciphers only) encrypts each block with all its ciphers between the two
 *    xors with T; that equals one LRW pass per cipher with the same K2 and I, which is how this
 *    file (and dm-crypt's stacked devices) computes it.
 *  - CBC (TrueCrypt 1.0 to 4.0) with whitening: single ciphers and the "inner CBC" of cascades
 *    holding a 64-bit cipher (one CBC pass per cipher), and the "outer CBC" of cascades of 128-bit
 *    ciphers (the cascade is one block cipher inside one CBC pass). Data sector s: IV = seed xor
 *    LE64(s), an 8-byte whitening value from CRC-32s of (seed' xor LE64(s)) xored onto the whole
 *    ciphertext (dm-crypt's "tcw" IV). Header: IV = key[0, bs), whitening = key[8, 16).
 *
 * Key layout (both the header key and the master key area): key[0, 32) is the LRW tweak key or the
 * CBC IV seed and whitening seed; the ciphers' keys follow from byte 32 in encryption order.
 * spec/interop.md, "TrueCrypt legacy modes", has the full rules.
 *
 * No N-API here (tc_legacy_napi.c binds it). Not thread-safe per context.
 */
#ifndef VAULT_TC_LEGACY_H
#define VAULT_TC_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TC_LEGACY_SECTOR 512
#define TC_LEGACY_HEADER_ENC_LEN 448 /* the encrypted part of a header: bytes 64..512 */
#define TC_LEGACY_MAX_CIPHERS 3
/* Sector numbers stay below 2^55: LRW block indices (sector * 64 + 1 for 64-bit blocks) below 2^61. */
#define TC_LEGACY_MAX_SECTOR (UINT64_C(1) << 55)

typedef enum { TC_MODE_LRW, TC_MODE_CBC_INNER, TC_MODE_CBC_OUTER } tc_legacy_mode;

typedef struct {
  const char *name;         /* "lrw-aes", "cbc-serpent-twofish-aes", "cbc-blowfish-aes" ... */
  tc_legacy_mode mode;      /* a single cipher in CBC counts as TC_MODE_CBC_INNER */
  unsigned count;           /* ciphers, in the order they encrypt */
  const char *ciphers[TC_LEGACY_MAX_CIPHERS];
  unsigned key_bytes;       /* bytes of key material used: 32 + the ciphers' keys */
} tc_legacy_chain_info;

/* The chains, in the order to try them; NULL past the end. */
const tc_legacy_chain_info *tc_legacy_chain(size_t i);
const tc_legacy_chain_info *tc_legacy_chain_by_name(const char *name);

typedef struct tc_legacy_ctx tc_legacy_ctx;

/* Key schedules for `chain` from `key` (key_len >= chain->key_bytes). NULL with *err set: a
   negative errno (-ENOMEM, -EINVAL), or a libgcrypt error code (> 0) for gcry_strerror. */
tc_legacy_ctx *tc_legacy_open(const tc_legacy_chain_info *chain, const uint8_t *key, size_t key_len, int *err);
/* Wipes and frees; NULL-safe. */
void tc_legacy_close(tc_legacy_ctx *ctx);

/* The 448 encrypted header bytes, in place, with the header rules. 0 or a libgcrypt error. */
int tc_legacy_header(tc_legacy_ctx *ctx, uint8_t *buf, bool encrypt);
/* `len` / 512 sectors in place, the first with IV sector number `sector`. 0 or a libgcrypt error. */
int tc_legacy_sectors(tc_legacy_ctx *ctx, uint8_t *buf, size_t len, uint64_t sector, bool encrypt);

#endif
