/*
 * dm_crypt: dm-crypt's sector encryption for the LUKS specs the XTS chain path does not run:
 * CBC ("aes-cbc-essiv:sha256", the LUKS1 default for years, "-cbc-plain", "-cbc-plain64"), XTS
 * with 128- or 192-bit cipher keys ("aes-xts-plain64" with a 256-bit volume key), and XTS with the
 * 32-bit "plain" IV at any key size ("aes-xts-plain/512": the chain path's tweaks are 64 bits and
 * would not wrap at sector 2^32 as dm-crypt's IV does).
 *
 * Each sector is one CBC chain or one XTS data unit under the volume key, its IV from the sector
 * number s:
 *   plain         IV = LE32(s mod 2^32) padded with zeros to the block size
 *   plain64       IV = LE64(s) padded with zeros
 *   essiv:sha256  IV = E_salt(LE64(s) padded with zeros), salt = SHA-256(volume key), E the same
 *                 block cipher keyed with the 32-byte salt (Linux drivers/md/dm-crypt.c,
 *                 crypt_iv_essiv_gen); CBC only
 * s counts 512-byte units: a 4096-byte sector's IV is its first 512-byte unit (dm-crypt without
 * iv_large_sectors, which LUKS never sets), so the engine's first_tweak/step model carries it.
 * XTS keys are key1 || key2, each half the volume key (dm-crypt's "xts(aes)").
 *
 * The engine spec names cipher, mode, IV and volume-key size in bits: "aes-cbc-essiv:sha256/256",
 * "serpent-cbc-plain64/128", "aes-xts-plain64/256". Ciphers: aes, serpent, camellia (128-, 192-,
 * 256-bit keys) and twofish (128, 256), all from libgcrypt (AES-NI and AVX2 where the CPU has
 * them). No N-API here; the cipher engine binds it.
 */
#ifndef VAULT_DM_CRYPT_H
#define VAULT_DM_CRYPT_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DM_IV_PLAIN, DM_IV_PLAIN64, DM_IV_ESSIV_SHA256 } dm_iv_mode;

typedef struct {
  int algo;       /* libgcrypt cipher for the data key (one XTS half); 0: not a dm-crypt spec */
  int mode;       /* GCRY_CIPHER_MODE_CBC or GCRY_CIPHER_MODE_XTS */
  int essiv_algo; /* the same cipher with a 256-bit key, for ESSIV */
  dm_iv_mode iv;
  size_t key_bytes; /* the volume key */
} dm_crypt_spec;

typedef struct dm_crypt_ctx dm_crypt_ctx;

/* Parses an engine spec (above). 0; 1 when `spec` is not a dm-crypt spec at all (neither "-cbc-"
   nor "-xts-" followed by "/bits"); -1 with `err` (errlen bytes) saying what is wrong. */
int dm_crypt_parse(const char *spec, dm_crypt_spec *out, char *err, size_t errlen);

/* A context keyed with `key` (spec->key_bytes). NULL with *gerr set (a libgcrypt error, or
   -ENOMEM). libgcrypt must be initialised (the cipher engine does it). */
dm_crypt_ctx *dm_crypt_open(const dm_crypt_spec *spec, const uint8_t *key, int *gerr);
void dm_crypt_close(dm_crypt_ctx *ctx); /* wipes; NULL-safe */

/* The context's libgcrypt handles (data cipher, ESSIV's; NULL where absent, both for a NULL ctx):
   where its key schedules live, for the caller's check that they are in locked memory. */
void dm_crypt_handles(const dm_crypt_ctx *ctx, const void *out[2]);

/* Whole sectors in place: sector i has IV sector number first + i * step. 0 or a libgcrypt error. */
int dm_crypt_sectors(dm_crypt_ctx *ctx, uint8_t *buf, size_t len, size_t sector, uint64_t first, uint64_t step, int encrypt);

#endif
