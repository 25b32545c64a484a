/*
 * cipher_engine: XTS over a chain of 256-bit block ciphers, as VeraCrypt encrypts its volumes:
 * AES, Serpent, Twofish, Camellia, Kuznyechik and cascades of up to three of them.
 *
 * A chain lists its ciphers in ENCRYPTION order (the first is applied first; VeraCrypt names the
 * chain in the reverse order: ["serpent", "twofish", "aes"] is VeraCrypt's "AES-Twofish-Serpent").
 * Key layout (VeraCrypt Crypto.c EAInit/EAInitMode, cryptsetup lib/tcrypt/tcrypt.c): the primary
 * XTS keys of all ciphers first, 32 bytes each in chain order, then all the secondary (tweak) keys
 * in the same order: 64, 128 or 192 bytes. Each cipher makes one full XTS pass over the buffer
 * (data units = sectors, sector i's tweak first_tweak + i * step), decryption in reverse order
 * (Crypto.c EncryptBuffer/DecryptBuffer).
 *
 * Where each cipher comes from: AES, Serpent, Twofish and Camellia from libgcrypt's XTS mode (for
 * AES its AES-NI/VAES bulk code: measured ~2x OpenSSL-through-node at 4096-byte sectors, 1.4x at
 * 512, bench/RESULTS.md), Kuznyechik from kuznyechik.c (libgcrypt 1.10 lacks it) with the XTS
 * arithmetic here.
 *
 * Key schedules: libgcrypt's in its secure (locked) memory, Kuznyechik's in locked pages
 * (secure_mem); all wiped on free. Threading: a context is used by one thread at a time; any
 * number of contexts on any threads.
 */
#ifndef VAULT_CIPHER_ENGINE_H
#define VAULT_CIPHER_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dm_crypt.h"
#include "tc_legacy.h"

#define VAULT_CHAIN_MAX 3
#define VAULT_XTS_BLOCK 16
#define VAULT_XTS_KEY_LEN 64 /* one cipher's key1 || key2 */
/* libgcrypt (like OpenSSL) refuses XTS data units above 2^20 blocks, the IEEE 1619 limit. */
#define VAULT_XTS_MAX_SECTOR (VAULT_XTS_BLOCK << 20)
#define VAULT_CIPHER_KEY_LEN 32 /* per cipher, per XTS half */

typedef enum {
  VAULT_CIPHER_AES,
  VAULT_CIPHER_SERPENT,
  VAULT_CIPHER_TWOFISH,
  VAULT_CIPHER_CAMELLIA,
  VAULT_CIPHER_KUZNYECHIK,
} vault_cipher_id;

typedef struct {
  size_t n;
  vault_cipher_id ids[VAULT_CHAIN_MAX];
  /* Instead of an XTS chain (n == 0): one of TrueCrypt's legacy LRW/CBC chains (tc_legacy.h),
     named as there ("lrw-aes", "cbc-serpent-twofish-aes"); its key is chain->key_bytes long, its
     sectors 512 bytes, and the run's first tweak is the IV sector number (step 1). */
  const tc_legacy_chain_info *legacy;
  /* Or (n == 0, legacy NULL, dm.algo != 0): a dm-crypt spec the chains lack (CBC with a plain/plain64/essiv IV, XTS with short keys), named as
     dm_crypt.h says ("aes-cbc-essiv:sha256/256"); its key is dm.key_bytes long, the run's tweaks are
     IV sector numbers. */
  dm_crypt_spec dm;
} vault_chain;

typedef struct vault_cipher_ctx vault_cipher_ctx;

/* Parses "aes", "serpent-twofish-aes" (encryption order, lower case, '-' between names), a
   TrueCrypt legacy chain's name or a dm-crypt spec (dm_crypt.h) into `out`. Returns 0, or -1 (vault_cipher_error() says why). */
int vault_chain_parse(const char *spec, vault_chain *out);

/* Initialises libgcrypt for the whole addon, once per process, with the secure pool the cipher
   handles need (cipher_engine.c gcry_init). Every libgcrypt user in the addon calls this first.
   Returns 1 when libgcrypt is usable, 0 when it is too old. */
int vault_gcry_init(void);

/* Bytes of key a chain takes: 64 per cipher. */
size_t vault_chain_key_len(const vault_chain *c);

/* Sets up what `c` needs once per process (libgcrypt and its locked pool, sized for `nctx`
   contexts of `c`, at least 1 MiB (POOL_MIN)) now rather than at the first context: the volume server calls
   it before it sizes its own locked memory. Returns 0; -1 when libgcrypt is unusable; -2 when its
   secure pool, where the key schedules will live, could not be locked (RLIMIT_MEMLOCK): the server
   then refuses to start rather than keep schedules in memory that can be swapped
   (vault_cipher_error() says which). The pool's size is fixed by the process's first libgcrypt
   use: later calls find it as it is. */
int vault_cipher_prepare(const vault_chain *c, size_t nctx);

/* A context keyed for `c` with `key` (vault_chain_key_len(c) bytes, the caller checks). NULL on
   failure (vault_cipher_error()): a cipher's two key halves equal, libgcrypt unusable, memory. */
vault_cipher_ctx *vault_cipher_ctx_new(const vault_chain *c, const uint8_t *key);

/* Wipes and frees. NULL-safe. */
void vault_cipher_ctx_free(vault_cipher_ctx *ctx);

/* Whether every libgcrypt handle of `ctx` (its key schedules) lies in the locked pool that
   vault_cipher_prepare found; false if it found none. A pool that runs out grows unlocked. (A
   TrueCrypt legacy chain's handles are in the ordinary heap, SECURITY.md; not counted.) */
bool vault_cipher_ctx_locked(const vault_cipher_ctx *ctx);

/*
 * Encrypts (encrypt != 0) or decrypts `len` bytes of `buf` in place, through the whole chain:
 * len / sector_size sectors. Sector i of the run (from 0) is one XTS data unit (IEEE 1619) whose
 * tweak is first_tweak + i * tweak_step, a 128-bit little-endian number (spec/format.md §8); the
 * caller guarantees that the last tweak fits in 64 bits. sector_size is a multiple of 16 in
 * [16, VAULT_XTS_MAX_SECTOR] and len a multiple of it (0 is a no-op). Returns 0, or -1 (the
 * buffer's contents are then unspecified).
 */
int vault_cipher_run(vault_cipher_ctx *ctx, uint8_t *buf, size_t len, size_t sector_size, uint64_t first_tweak,
                     uint64_t tweak_step, int encrypt);

/* Why the last failing vault_cipher_* / vault_chain_* call on this thread failed. */
const char *vault_cipher_error(void);

/* One cipher's block function (ECB) over `len` bytes (whole blocks) under a 32-byte key: the code
   the XTS passes use (libgcrypt's cipher, kuznyechik.c, OpenSSL's AES), for known-answer tests.
   Returns 0 or -1. */
int vault_cipher_ecb(vault_cipher_id id, const uint8_t key[32], uint8_t *buf, size_t len, int encrypt);

/* libgcrypt's own XTS over `len` bytes, ONE call per sector (sector i's tweak i), through the XTS
   chain `c` as the engine would run it (one full pass per cipher, encryption in chain order,
   decryption in reverse; `key` in the chain's layout, 64 bytes per cipher), every cipher
   libgcrypt's own, AES included: `vault benchmark`'s reference figure. Kuznyechik: -1 (libgcrypt
   1.10 has none). Returns 0 or -1. */
int vault_gcry_xts_reference(const vault_chain *c, const uint8_t *key, uint8_t *buf, size_t len, size_t sector,
                             int encrypt);

#endif
