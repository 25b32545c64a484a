/* TrueCrypt's legacy LRW and CBC modes over libgcrypt's ECB block functions; see tc_legacy.h. */
#include "tc_legacy.h"
#include "cipher_engine.h"
#include "secure_mem.h"

#include <errno.h>
#include <string.h>

#include <gcrypt.h>

typedef struct {
  const char *name;
  int algo;
  unsigned key_len;
  unsigned bs;   /* block size in bytes */
  bool le;       /* TrueCrypt's Blowfish: the 32-bit halves of a block are little-endian */
} cipher_def;

static const cipher_def CIPHERS[] = {
    {"aes", GCRY_CIPHER_AES256, 32, 16, false},      {"serpent", GCRY_CIPHER_SERPENT256, 32, 16, false},
    {"twofish", GCRY_CIPHER_TWOFISH, 32, 16, false}, {"blowfish", GCRY_CIPHER_BLOWFISH, 56, 8, true},
    {"cast5", GCRY_CIPHER_CAST5, 16, 8, false},      {"des3_ede", GCRY_CIPHER_3DES, 24, 8, false},
};

static const cipher_def *cipher_def_of(const char *name) {
  for (size_t i = 0; i < sizeof CIPHERS / sizeof CIPHERS[0]; i++)
    if (strcmp(CIPHERS[i].name, name) == 0) return &CIPHERS[i];
  return NULL;
}

/* key_bytes = 32 (tweak key / IV and whitening seeds) + the ciphers' key lengths. */
static const tc_legacy_chain_info CHAINS[] = {
    /* LRW: TrueCrypt 4.1 to 4.3 */
    {"lrw-aes", TC_MODE_LRW, 1, {"aes"}, 64},
    {"lrw-serpent", TC_MODE_LRW, 1, {"serpent"}, 64},
    {"lrw-twofish", TC_MODE_LRW, 1, {"twofish"}, 64},
    {"lrw-twofish-aes", TC_MODE_LRW, 2, {"twofish", "aes"}, 96},
    {"lrw-serpent-twofish-aes", TC_MODE_LRW, 3, {"serpent", "twofish", "aes"}, 128},
    {"lrw-aes-serpent", TC_MODE_LRW, 2, {"aes", "serpent"}, 96},
    {"lrw-aes-twofish-serpent", TC_MODE_LRW, 3, {"aes", "twofish", "serpent"}, 128},
    {"lrw-serpent-twofish", TC_MODE_LRW, 2, {"serpent", "twofish"}, 96},
    /* LRW over 64-bit blocks, GF(2^64) (TrueCrypt 4.1 to 4.3; cryptsetup cannot map these) */
    {"lrw-blowfish", TC_MODE_LRW, 1, {"blowfish"}, 88},
    {"lrw-cast5", TC_MODE_LRW, 1, {"cast5"}, 48},
    {"lrw-des3_ede", TC_MODE_LRW, 1, {"des3_ede"}, 56},
    /* CBC: TrueCrypt 1.0 to 4.0. Single ciphers. */
    {"cbc-aes", TC_MODE_CBC_INNER, 1, {"aes"}, 64},
    {"cbc-serpent", TC_MODE_CBC_INNER, 1, {"serpent"}, 64},
    {"cbc-twofish", TC_MODE_CBC_INNER, 1, {"twofish"}, 64},
    {"cbc-cast5", TC_MODE_CBC_INNER, 1, {"cast5"}, 48},
    {"cbc-des3_ede", TC_MODE_CBC_INNER, 1, {"des3_ede"}, 56},
    {"cbc-blowfish", TC_MODE_CBC_INNER, 1, {"blowfish"}, 88},
    /* Outer CBC: cascades of 128-bit ciphers. */
    {"cbc-twofish-aes", TC_MODE_CBC_OUTER, 2, {"twofish", "aes"}, 96},
    {"cbc-serpent-twofish-aes", TC_MODE_CBC_OUTER, 3, {"serpent", "twofish", "aes"}, 128},
    {"cbc-aes-serpent", TC_MODE_CBC_OUTER, 2, {"aes", "serpent"}, 96},
    {"cbc-aes-twofish-serpent", TC_MODE_CBC_OUTER, 3, {"aes", "twofish", "serpent"}, 128},
    {"cbc-serpent-twofish", TC_MODE_CBC_OUTER, 2, {"serpent", "twofish"}, 96},
    /* Inner CBC: cascades with Blowfish (64-bit blocks). */
    {"cbc-blowfish-aes", TC_MODE_CBC_INNER, 2, {"blowfish", "aes"}, 120},
    {"cbc-serpent-blowfish-aes", TC_MODE_CBC_INNER, 3, {"serpent", "blowfish", "aes"}, 152},
};

const tc_legacy_chain_info *tc_legacy_chain(size_t i) {
  return i < sizeof CHAINS / sizeof CHAINS[0] ? &CHAINS[i] : NULL;
}

const tc_legacy_chain_info *tc_legacy_chain_by_name(const char *name) {
  for (size_t i = 0; i < sizeof CHAINS / sizeof CHAINS[0]; i++)
    if (strcmp(CHAINS[i].name, name) == 0) return &CHAINS[i];
  return NULL;
}

struct tc_legacy_ctx {
  const tc_legacy_chain_info *chain;
  const cipher_def *def[TC_LEGACY_MAX_CIPHERS];
  gcry_cipher_hd_t hd[TC_LEGACY_MAX_CIPHERS];
  uint8_t seed[32];            /* key[0, 32): LRW's K2 in [0, 16); CBC's IV and whitening seeds */
  /* 128-bit blocks: [k][0..1]; 64-bit blocks: [k][0] only, k < 64, K2 = key[0, 8) */
  uint64_t lrw_mul[128][2];    /* K2 (x) x^k, as (bytes 0..7, bytes 8..15) big-endian */
  uint64_t lrw_step[128][2];   /* K2 (x) (2^(k+1) - 1): the tweak change when I+1 clears k low ones */
  uint8_t scratch[TC_LEGACY_SECTOR];
};

/* libgcrypt is initialised once per process for the whole addon (cipher_engine.h vault_gcry_init). */
static int gcry_ready(void) {
  return vault_gcry_init() ? 0 : GPG_ERR_NOT_SUPPORTED;
}

static uint64_t load_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static void store_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static void store_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++, v >>= 8) p[i] = (uint8_t)v;
}

/* GF(2^128) mod x^128 + x^7 + x^2 + x + 1, or for 64-bit blocks GF(2^64) mod x^64 + x^4 + x^3 +
   x + 1 (TrueCrypt's GfMul.c); elements as big-endian integers, bit k = coefficient of x^k. */
static void lrw_init(tc_legacy_ctx *c, unsigned bs) {
  uint64_t hi = load_be64(c->seed), lo = bs == 16 ? load_be64(c->seed + 8) : 0;
  for (unsigned k = 0; k < bs * 8; k++) {
    c->lrw_mul[k][0] = hi;
    c->lrw_mul[k][1] = lo;
    c->lrw_step[k][0] = hi ^ (k ? c->lrw_step[k - 1][0] : 0);
    c->lrw_step[k][1] = lo ^ (k ? c->lrw_step[k - 1][1] : 0);
    uint64_t carry = hi >> 63; /* times x, reduced */
    if (bs == 16) {
      hi = hi << 1 | lo >> 63;
      lo = lo << 1 ^ (carry ? 0x87 : 0);
    } else {
      hi = hi << 1 ^ (carry ? 0x1b : 0);
    }
  }
}

tc_legacy_ctx *tc_legacy_open(const tc_legacy_chain_info *chain, const uint8_t *key, size_t key_len, int *err) {
  tc_legacy_ctx *c;
  unsigned off = 32;
  int e;
  if (chain == NULL || key_len < chain->key_bytes) {
    *err = -EINVAL;
    return NULL;
  }
  if ((e = gcry_ready()) != 0) {
    *err = e;
    return NULL;
  }
  c = vault_secure_alloc(sizeof *c, &e);
  if (c == NULL) {
    *err = -e;
    return NULL;
  }
  c->chain = chain;
  memcpy(c->seed, key, sizeof c->seed);
  for (unsigned j = 0; j < chain->count; j++) {
    const cipher_def *d = cipher_def_of(chain->ciphers[j]);
    gcry_error_t ge;
    c->def[j] = d;
    ge = gcry_cipher_open(&c->hd[j], d->algo, GCRY_CIPHER_MODE_ECB, 0);
    if (!ge) ge = gcry_cipher_ctl(c->hd[j], GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1);
    if (!ge) ge = gcry_cipher_setkey(c->hd[j], key + off, d->key_len);
    if (gcry_err_code(ge) == GPG_ERR_WEAK_KEY) ge = 0; /* a weak 3DES key TrueCrypt would use all the same */
    if (ge) {
      *err = (int)gcry_err_code(ge);
      tc_legacy_close(c);
      return NULL;
    }
    off += d->key_len;
  }
  if (chain->mode == TC_MODE_LRW) lrw_init(c, c->def[0]->bs);
  return c;
}

void tc_legacy_close(tc_legacy_ctx *c) {
  if (c == NULL) return;
  for (unsigned j = 0; j < TC_LEGACY_MAX_CIPHERS; j++)
    if (c->hd[j]) gcry_cipher_close(c->hd[j]); /* libgcrypt wipes the key schedule */
  vault_secure_free(c, sizeof *c);            /* wipes seeds and tables */
}

static void swab_words(uint8_t *p, size_t len) {
  for (size_t i = 0; i + 4 <= len; i += 4) {
    uint8_t a = p[i], b = p[i + 1];
    p[i] = p[i + 3];
    p[i + 1] = p[i + 2];
    p[i + 2] = b;
    p[i + 3] = a;
  }
}

/* Cipher j's block function over whole blocks of buf, in place. */
static int ecb(tc_legacy_ctx *c, unsigned j, uint8_t *buf, size_t len, bool enc) {
  gcry_error_t ge;
  if (c->def[j]->le) swab_words(buf, len);
  ge = enc ? gcry_cipher_encrypt(c->hd[j], buf, len, NULL, 0) : gcry_cipher_decrypt(c->hd[j], buf, len, NULL, 0);
  if (c->def[j]->le) swab_words(buf, len);
  return (int)gcry_err_code(ge);
}

/* One LRW pass of cipher j over len bytes (<= 512), the first block having index `index`
   (< 2^63, so that index + 1 never wraps). */
static int lrw_pass(tc_legacy_ctx *c, unsigned j, uint8_t *buf, size_t len, uint64_t index, bool enc) {
  unsigned bs = c->def[j]->bs;
  uint64_t hi = 0, lo = 0;
  uint8_t *t = c->scratch;
  int r;
  for (int k = 0; k < 64; k++)
    if (index >> k & 1) {
      hi ^= c->lrw_mul[k][0];
      lo ^= c->lrw_mul[k][1];
    }
  for (size_t b = 0; b < len; b += bs) {
    store_be64(t + b, hi);
    if (bs == 16) store_be64(t + b + 8, lo);
    int k = __builtin_ctzll(~index); /* index + 1 clears k low one bits and sets bit k */
    hi ^= c->lrw_step[k][0];
    lo ^= c->lrw_step[k][1];
    index++;
  }
  for (size_t i = 0; i < len; i++) buf[i] ^= t[i];
  r = ecb(c, j, buf, len, enc);
  for (size_t i = 0; i < len; i++) buf[i] ^= t[i];
  return r;
}

/* One CBC pass over len bytes with ciphers [first, first + n) as one block function (n > 1: outer
   CBC), then TrueCrypt's whitening: the 8-byte `white` xored onto all of the ciphertext, after
   the chaining (the chaining value is the ciphertext before whitening). */
static int cbc_pass(tc_legacy_ctx *c, unsigned first, unsigned n, uint8_t *buf, size_t len, const uint8_t *iv,
                    const uint8_t *white, bool enc) {
  unsigned bs = c->def[first]->bs;
  int r = 0;
  if (enc) {
    const uint8_t *prev = iv;
    for (size_t b = 0; b < len; b += bs) {
      for (unsigned i = 0; i < bs; i++) buf[b + i] ^= prev[i];
      for (unsigned j = first; j < first + n && !r; j++) r = ecb(c, j, buf + b, bs, true);
      prev = buf + b;
    }
    for (size_t i = 0; i < len; i++) buf[i] ^= white[i % 8];
    return r;
  }
  for (size_t i = 0; i < len; i++) buf[i] ^= white[i % 8];
  memcpy(c->scratch, buf, len);
  for (unsigned j = first + n; j-- > first && !r;) r = ecb(c, j, buf, len, false);
  for (unsigned i = 0; i < bs; i++) buf[i] ^= iv[i];
  for (size_t i = bs; i < len; i++) buf[i] ^= c->scratch[i - bs];
  return r;
}

static uint32_t crc32_4(const uint8_t *p) {
  uint32_t crc = 0xffffffffu;
  for (int i = 0; i < 4; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = crc & 1 ? crc >> 1 ^ 0xedb88320u : crc >> 1;
  }
  return ~crc;
}

/* TrueCrypt's InitSectorIVAndWhitening (dm-crypt's tcw IV) for a cipher of block size bs. */
static void tcw_values(const uint8_t *seed, unsigned bs, uint64_t sector, uint8_t *iv, uint8_t *white) {
  uint8_t s[8], w[16];
  for (int i = 0; i < 8; i++) s[i] = (uint8_t)(sector >> (8 * i));
  for (unsigned i = 0; i < bs; i++) iv[i] = seed[i] ^ s[i % 8];
  for (unsigned i = 0; i < 16; i++) w[i] = seed[bs + i] ^ s[i % 8];
  store_le32(white, crc32_4(w) ^ crc32_4(w + 12));
  store_le32(white + 4, crc32_4(w + 4) ^ crc32_4(w + 8));
}

/* One unit (a sector or the header) through the whole chain. header: the header's IV and
   whitening rules and LRW index 1; else data sector `sector`. */
static int unit(tc_legacy_ctx *c, uint8_t *buf, size_t len, bool header, uint64_t sector, bool enc) {
  const tc_legacy_chain_info *ch = c->chain;
  uint8_t iv[16], white[8];
  int r = 0;
  if (ch->mode == TC_MODE_CBC_OUTER) {
    if (header) {
      memcpy(iv, c->seed, 16);
      memcpy(white, c->seed + 8, 8);
    } else {
      tcw_values(c->seed, 16, sector, iv, white);
    }
    return cbc_pass(c, 0, ch->count, buf, len, iv, white, enc);
  }
  for (unsigned n = 0; n < ch->count && !r; n++) {
    unsigned j = enc ? n : ch->count - 1 - n;
    if (ch->mode == TC_MODE_LRW) {
      r = lrw_pass(c, j, buf, len, header ? 1 : sector * (TC_LEGACY_SECTOR / c->def[j]->bs) + 1, enc);
      continue;
    }
    unsigned bs = c->def[j]->bs;
    if (header) {
      memcpy(iv, c->seed, bs);
      memcpy(white, c->seed + 8, 8);
    } else {
      tcw_values(c->seed, bs, sector, iv, white);
    }
    r = cbc_pass(c, j, 1, buf, len, iv, white, enc);
  }
  return r;
}

int tc_legacy_header(tc_legacy_ctx *c, uint8_t *buf, bool enc) {
  return unit(c, buf, TC_LEGACY_HEADER_ENC_LEN, true, 0, enc);
}

int tc_legacy_sectors(tc_legacy_ctx *c, uint8_t *buf, size_t len, uint64_t sector, bool enc) {
  int r = 0;
  if (sector >= TC_LEGACY_MAX_SECTOR || len / TC_LEGACY_SECTOR > TC_LEGACY_MAX_SECTOR - sector) return GPG_ERR_TOO_LARGE;
  for (size_t off = 0; off + TC_LEGACY_SECTOR <= len && !r; off += TC_LEGACY_SECTOR)
    r = unit(c, buf + off, TC_LEGACY_SECTOR, false, sector++, enc);
  return r;
}
