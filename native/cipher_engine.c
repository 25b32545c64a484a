/* XTS over a chain of block ciphers (VeraCrypt's algorithms); see cipher_engine.h. */
#include "cipher_engine.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>
#include <openssl/crypto.h>

#include "kuznyechik.h"
#include "secure_mem.h"

#define BLOCK 16

/* One cipher of a chain: `gc` (and for bulk decryption `cbc` and `ecb2`) or `kuz` is set. */
typedef struct {
  vault_cipher_id id;
  gcry_cipher_hd_t gc;  /* libgcrypt, XTS mode, keyed with key1 || key2 */
  gcry_cipher_hd_t cbc; /* libgcrypt, CBC mode, key1: bulk decryption (see gcry_decrypt_bulk) */
  gcry_cipher_hd_t ecb2; /* libgcrypt, ECB mode, key2: the initial tweaks for gcry_decrypt_bulk */
  vault_kuz_key *kuz;   /* [0] data key, [1] tweak key, in `kuz_mem` */
} stage;

struct vault_cipher_ctx {
  size_t n;
  stage st[VAULT_CHAIN_MAX];
  vault_kuz_key *kuz_mem; /* locked pages (secure_mem) for every Kuznyechik stage's keys */
  tc_legacy_ctx *legacy;  /* a TrueCrypt legacy chain instead of the stages (n == 0) */
  dm_crypt_ctx *dm;         /* or a dm-crypt spec (n == 0) */
};

static const struct {
  const char *name;
  int gcry_algo; /* 0: not libgcrypt */
  int bulk_dec;  /* decrypt through libgcrypt's bulk CBC decryption (gcry_decrypt_bulk) */
  /* Secure memory one stage's handles take (XTS, plus CBC and ECB with bulk_dec), rounded up:
     measured with GCRYCTL_DUMP_SECMEM_STATS, libgcrypt 1.10.1 (3040, 7040, 36864, 4992 bytes). */
  size_t secmem;
} CIPHERS[] = {
    [VAULT_CIPHER_AES] = {"aes", GCRY_CIPHER_AES256, 0, 4096}, /* libgcrypt's bulk XTS: AES-NI, VAES where the CPU has it */
    [VAULT_CIPHER_SERPENT] = {"serpent", GCRY_CIPHER_SERPENT256, 1, 8192},
    [VAULT_CIPHER_TWOFISH] = {"twofish", GCRY_CIPHER_TWOFISH, 1, 40960},
    [VAULT_CIPHER_CAMELLIA] = {"camellia", GCRY_CIPHER_CAMELLIA256, 1, 6144},
    [VAULT_CIPHER_KUZNYECHIK] = {"kuznyechik", 0, 0, 0},
};
/* A dm-crypt spec's handles (the data cipher, ESSIV's ECB): at most a Twofish XTS and a CBC. */
#define DM_SECMEM 32768
#define POOL_MIN (1024 * 1024) /* ten contexts of the heaviest chain (a Twofish cascade, ~52 KiB) with room */
#define POOL_SLACK (64 * 1024)
#define NCIPHERS (sizeof CIPHERS / sizeof CIPHERS[0])

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                       */

static _Thread_local char errmsg[256];

const char *vault_cipher_error(void) { return errmsg[0] != '\0' ? errmsg : "no cipher error recorded"; }

static void fail(const char *fmt, const char *a, const char *b) { snprintf(errmsg, sizeof errmsg, fmt, a, b); }

/* ------------------------------------------------------------------------------------------ */
/* libgcrypt                                                                                    */

/*
 * Initialised once per process, the first time libgcrypt is needed (a cipher keyed, a Whirlpool or
 * Streebog PBKDF2). Its secure memory pool (mlock()ed, wiped on free) holds the handles, hence the
 * key schedules: per stage of a context ~3 KiB for AES, ~7 KiB for Serpent, ~5 KiB for Camellia
 * and ~36 KiB for Twofish (its key-dependent S-boxes; with the two extra handles of
 * gcry_decrypt_bulk). The pool is gcry_pool_want bytes: 1 MiB, or what vault_cipher_prepare asked
 * for the volume server's workers. Past it libgcrypt grows the pool with unlocked overflow pools
 * (GCRYCTL_AUTO_EXPAND_SECMEM) rather than fail: the CLI's short-lived handles may; the volume
 * server checks its workers' handles are not there (vault_cipher_ctx_locked). Where
 * RLIMIT_MEMLOCK has no room for the pool, libgcrypt keeps it unlocked and says so on stderr; that
 * warning is silenced here (the server checks, gcry_pool_locked). The addon's other libgcrypt users (kdf.c, tc_legacy.c) initialise
 * through vault_gcry_init too: whoever came first used to finish the initialisation without this
 * pool, and libgcrypt then gave secure handles only its default 32 KiB, too little for one Twofish
 * stage (a Whirlpool or Streebog key derivation before a Twofish header failed with ENOMEM).
 */
static int gcry_ready;
static pthread_once_t gcry_once = PTHREAD_ONCE_INIT;
static size_t gcry_pool_want = POOL_MIN; /* vault_cipher_prepare may raise it before gcry_init */
static uintptr_t pool_lo, pool_hi;       /* the locked main pool's mapping, once found */

static void gcry_init(void) {
  if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
    gcry_ready = 1; /* another component of the process initialised it */
    return;
  }
  if (gcry_check_version(GCRYPT_VERSION) == NULL) return;
  gcry_control(GCRYCTL_DISABLE_SECMEM_WARN);
  gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 32768);
  gcry_control(GCRYCTL_INIT_SECMEM, gcry_pool_want, 0);
  gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
  gcry_ready = 1;
}

int vault_gcry_init(void) {
  pthread_once(&gcry_once, gcry_init);
  return gcry_ready;
}

/* Whether the mapping holding libgcrypt's secure pool is mlock()ed: the VmFlags of that mapping in
   /proc/self/smaps carry "lo" (VM_LOCKED). libgcrypt does not say, and goes on unlocked where
   mlock() fails (RLIMIT_MEMLOCK), so the pool is found by one secure allocation's address. When
   it is locked, its range is kept: contexts check their handles lie in it (ctx_in_pool), since a
   pool that runs out grows by overflow pools that are NOT locked. */
static bool gcry_pool_locked(void) {
  char line[512];
  unsigned long in_lo = 0, in_hi = 0;
  bool in = false, locked = false;
  void *probe = gcry_malloc_secure(16);
  FILE *f = probe == NULL ? NULL : fopen("/proc/self/smaps", "re");
  while (f != NULL && fgets(line, sizeof line, f) != NULL) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
      if (in) break; /* past the pool's mapping */
      in = (uintptr_t)probe >= lo && (uintptr_t)probe < hi;
      in_lo = lo;
      in_hi = hi;
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      locked = strstr(line, " lo") != NULL;
      break;
    }
  }
  if (f != NULL) fclose(f);
  gcry_free(probe); /* NULL-safe */
  if (locked) {
    pool_lo = in_lo;
    pool_hi = in_hi;
  }
  return locked;
}

/* NULL (no handle) passes; any handle fails while no locked pool was found (pool_hi 0). */
static bool in_pool(const void *p) { return p == NULL || ((uintptr_t)p >= pool_lo && (uintptr_t)p < pool_hi); }

int vault_cipher_prepare(const vault_chain *c, size_t nctx) {
  bool gcry = c->legacy != NULL || c->dm.algo != 0;
  size_t per_ctx = c->dm.algo != 0 ? DM_SECMEM : 0, want;
  for (size_t i = 0; i < c->n; i++) {
    gcry = gcry || CIPHERS[c->ids[i]].gcry_algo != 0;
    per_ctx += CIPHERS[c->ids[i]].secmem;
  }
  if (!gcry) return 0; /* Kuznyechik alone: its schedules go to vault's own locked pages */
  want = nctx * per_ctx + POOL_SLACK;
  if (want > gcry_pool_want) gcry_pool_want = (want + 65535) / 65536 * 65536; /* if not initialised yet */
  pthread_once(&gcry_once, gcry_init); /* now, before the volume server sizes its locked memory */
  if (!gcry_ready) {
    fail("libgcrypt %s is too old (vault was built against %s)", gcry_check_version(NULL), GCRYPT_VERSION);
    return -1;
  }
  if (!gcry_pool_locked()) {
    snprintf(errmsg, sizeof errmsg, "libgcrypt's secure memory pool, which holds the key schedules, is not locked");
    return -2;
  }
  return 0;
}

/* A libgcrypt handle in `mode`, keyed with `keylen` bytes, in secure memory; NULL (error recorded)
   on failure. */
static gcry_cipher_hd_t gcry_open_keyed(int algo, int mode, const uint8_t *key, size_t keylen) {
  gcry_cipher_hd_t h = NULL;
  gcry_error_t e;
  pthread_once(&gcry_once, gcry_init);
  if (!gcry_ready) {
    fail("libgcrypt %s is too old (vault was built against %s)", gcry_check_version(NULL), GCRYPT_VERSION);
    return NULL;
  }
  e = gcry_cipher_open(&h, algo, mode, GCRY_CIPHER_SECURE);
  if (e == 0) e = gcry_cipher_setkey(h, key, keylen);
  if (e != 0) {
    fail("libgcrypt %s: %s", gcry_cipher_algo_name(algo), gcry_strerror(e));
    gcry_cipher_close(h); /* NULL-safe */
    return NULL;
  }
  return h;
}

static gcry_cipher_hd_t gcry_xts_open(int algo, const uint8_t *key64) {
  return gcry_open_keyed(algo, GCRY_CIPHER_MODE_XTS, key64, 2 * VAULT_CIPHER_KEY_LEN);
}

static int gcry_run(gcry_cipher_hd_t h, uint8_t *buf, size_t len, size_t sector, uint64_t tweak, uint64_t step,
                    int enc) {
  uint8_t iv[BLOCK] = {0};
  for (size_t off = 0; off < len; off += sector, tweak += step) {
    gcry_error_t e;
    for (int b = 0; b < 8; b++) iv[b] = (uint8_t)(tweak >> (8 * b)); /* 128-bit LE, high half 0 */
    e = gcry_cipher_setiv(h, iv, BLOCK);
    if (e == 0) e = enc ? gcry_cipher_encrypt(h, buf + off, sector, NULL, 0) : gcry_cipher_decrypt(h, buf + off, sector, NULL, 0);
    if (e != 0) {
      fail("libgcrypt XTS %s: %s", enc ? "encryption" : "decryption", gcry_strerror(e));
      return -1;
    }
  }
  return 0;
}

int vault_gcry_xts_reference(const vault_chain *c, const uint8_t *key, uint8_t *buf, size_t len, size_t sector,
                             int enc) {
  gcry_cipher_hd_t h[VAULT_CHAIN_MAX] = {NULL};
  uint8_t k64[2 * VAULT_CIPHER_KEY_LEN];
  int r = -1;
  if (c->n == 0 || c->n > VAULT_CHAIN_MAX) {
    fail("the libgcrypt reference takes an XTS chain of 1 to 3 ciphers%s%s", "", "");
    return -1;
  }
  for (size_t i = 0; i < c->n; i++) {
    vault_cipher_id id = c->ids[i];
    int algo = (size_t)id < NCIPHERS ? CIPHERS[id].gcry_algo : 0;
    if (algo == 0) {
      fail("%s has no libgcrypt XTS (libgcrypt %s lacks the cipher)", (size_t)id < NCIPHERS ? CIPHERS[id].name : "cipher",
           gcry_check_version(NULL));
      goto out;
    }
    /* The chain's key layout (cipher_engine.h): primaries in chain order, then the tweak keys. */
    memcpy(k64, key + VAULT_CIPHER_KEY_LEN * i, VAULT_CIPHER_KEY_LEN);
    memcpy(k64 + VAULT_CIPHER_KEY_LEN, key + VAULT_CIPHER_KEY_LEN * (c->n + i), VAULT_CIPHER_KEY_LEN);
    h[i] = gcry_xts_open(algo, k64);
    OPENSSL_cleanse(k64, sizeof k64);
    if (h[i] == NULL) goto out;
  }
  /* One full XTS pass per cipher, encryption in chain order, decryption in reverse (as the engine). */
  for (size_t j = 0; j < c->n; j++) {
    size_t i = enc ? j : c->n - 1 - j;
    if (gcry_run(h[i], buf, len, sector, 0, 1, enc) != 0) goto out;
  }
  r = 0;
out:
  for (size_t i = 0; i < c->n; i++) gcry_cipher_close(h[i]); /* NULL-safe; wipes the handle */
  return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Single blocks, for known-answer tests                                                        */

int vault_cipher_ecb(vault_cipher_id id, const uint8_t key[32], uint8_t *buf, size_t len, int enc) {
  int algo;
  gcry_cipher_hd_t h = NULL;
  gcry_error_t e;
  if ((size_t)id >= NCIPHERS || len % BLOCK != 0) {
    fail("internal error: %s%s", "bad cipher or length for ECB", "");
    return -1;
  }
  if (id == VAULT_CIPHER_KUZNYECHIK) {
    vault_kuz_key k;
    vault_kuz_set_key(&k, key);
    for (size_t o = 0; o < len; o += BLOCK) (enc ? vault_kuz_encrypt : vault_kuz_decrypt)(&k, buf + o);
    OPENSSL_cleanse(&k, sizeof k);
    return 0;
  }
  algo = CIPHERS[id].gcry_algo;
  pthread_once(&gcry_once, gcry_init);
  if (!gcry_ready) {
    fail("libgcrypt %s is too old (vault was built against %s)", gcry_check_version(NULL), GCRYPT_VERSION);
    return -1;
  }
  e = gcry_cipher_open(&h, algo, GCRY_CIPHER_MODE_ECB, GCRY_CIPHER_SECURE);
  if (e == 0) e = gcry_cipher_setkey(h, key, 32);
  if (e == 0) e = enc ? gcry_cipher_encrypt(h, buf, len, NULL, 0) : gcry_cipher_decrypt(h, buf, len, NULL, 0);
  gcry_cipher_close(h);
  if (e != 0) {
    fail("libgcrypt ECB: %s%s", gcry_strerror(e), "");
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Kuznyechik XTS                                                                               */

/* t = t * alpha in GF(2^128), little-endian (IEEE 1619); branch-free. */
static inline void times_alpha(uint8_t t[BLOCK]) {
  uint64_t lo, hi, carry;
  memcpy(&lo, t, 8);
  memcpy(&hi, t + 8, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  lo = __builtin_bswap64(lo);
  hi = __builtin_bswap64(hi);
#endif
  carry = hi >> 63;
  hi = (hi << 1) | (lo >> 63);
  lo = (lo << 1) ^ (0x87 & (0 - carry));
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
  lo = __builtin_bswap64(lo);
  hi = __builtin_bswap64(hi);
#endif
  memcpy(t, &lo, 8);
  memcpy(t + 8, &hi, 8);
}

static void kuz_run(const vault_kuz_key k[2], uint8_t *buf, size_t len, size_t sector, uint64_t tweak,
                    uint64_t step, int enc) {
  uint8_t t[BLOCK];
  for (size_t off = 0; off < len; off += sector, tweak += step) {
    memset(t, 0, BLOCK);
    for (int b = 0; b < 8; b++) t[b] = (uint8_t)(tweak >> (8 * b));
    vault_kuz_encrypt(&k[1], t);
    for (uint8_t *p = buf + off, *end = buf + off + sector; p < end; p += BLOCK) {
      for (int i = 0; i < BLOCK; i++) p[i] ^= t[i];
      if (enc)
        vault_kuz_encrypt(&k[0], p);
      else
        vault_kuz_decrypt(&k[0], p);
      for (int i = 0; i < BLOCK; i++) p[i] ^= t[i];
      times_alpha(t);
    }
  }
  OPENSSL_cleanse(t, sizeof t);
}

/* ------------------------------------------------------------------------------------------ */
/* libgcrypt XTS decryption on bulk CBC                                                         */

/*
 * libgcrypt 1.10 decrypts CBC with its parallel (AVX2) code but has none for XTS or ECB: measured
 * on this project's EPYC VM, CBC decryption of 4 KiB calls ran Serpent at 734, Twofish 460 and
 * Camellia 1049 MB/s, against 116 / 255 / 139 MB/s for ECB or XTS. CBC decryption computes
 * P_j = D(X_j) ^ X_{j-1} (X_{-1} = IV = 0), all D(X_j) at once, so XTS decryption
 * (P_j = D(C_j ^ T_j) ^ T_j) becomes, per chunk of BULK_CHUNK bytes:
 *   X_j = C_j ^ T_j in place (tweaks kept), one CBC decryption into tmp (IV 0),
 *   then backwards: P_j = tmp_j ^ X_{j-1} ^ T_j (X_{j-1} still in the buffer, written after).
 * Initial tweaks T_0 = E(key2, data unit number) come from an ECB handle, one call per chunk.
 * Encryption has no such route (CTR only encrypts counters) and stays on libgcrypt's XTS.
 */
#define BULK_CHUNK 4096

static int gcry_decrypt_bulk(const stage *s, uint8_t *buf, size_t len, size_t sector, uint64_t tweak, uint64_t step) {
  static const uint8_t zero[BLOCK];
  _Alignas(16) uint8_t tw[BULK_CHUNK], tmp[BULK_CHUNK], t0[BULK_CHUNK];
  uint8_t t[BLOCK];
  size_t in_sector = 0; /* bytes of the current sector before the next block */
  int r = -1;
  for (size_t off = 0; off < len;) {
    /* Whole sectors per chunk, or a large sector in pieces that never cross into the next one. */
    size_t n = sector <= BULK_CHUNK ? BULK_CHUNK / sector * sector : sector - in_sector;
    size_t starts, k = 0;
    uint8_t *d = buf + off;
    gcry_error_t e = 0;
    if (n > BULK_CHUNK) n = BULK_CHUNK;
    if (n > len - off) n = len - off;
    starts = sector <= BULK_CHUNK ? n / sector : (in_sector == 0);
    memset(t0, 0, starts * BLOCK);
    for (size_t i = 0; i < starts; i++, tweak += step)
      for (int b = 0; b < 8; b++) t0[i * BLOCK + b] = (uint8_t)(tweak >> (8 * b));
    if (starts > 0) e = gcry_cipher_encrypt(s->ecb2, t0, starts * BLOCK, NULL, 0);
    for (size_t j = 0; e == 0 && j < n; j += BLOCK) {
      if (in_sector == 0) memcpy(t, t0 + BLOCK * k++, BLOCK);
      memcpy(tw + j, t, BLOCK);
      for (int i = 0; i < BLOCK; i++) d[j + i] ^= t[i];
      times_alpha(t);
      in_sector = in_sector + BLOCK == sector ? 0 : in_sector + BLOCK;
    }
    if (e == 0) e = gcry_cipher_setiv(s->cbc, zero, BLOCK);
    if (e == 0) e = gcry_cipher_decrypt(s->cbc, tmp, n, d, n);
    if (e != 0) {
      fail("libgcrypt XTS decryption: %s%s", gcry_strerror(e), "");
      goto out;
    }
    for (size_t j = n; j > 0;) {
      const uint8_t *prev;
      j -= BLOCK;
      prev = j > 0 ? d + j - BLOCK : zero;
      for (int i = 0; i < BLOCK; i++) d[j + i] = tmp[j + i] ^ prev[i] ^ tw[j + i];
    }
    off += n;
  }
  r = 0;
out:
  OPENSSL_cleanse(tw, sizeof tw);
  OPENSSL_cleanse(tmp, sizeof tmp);
  OPENSSL_cleanse(t0, sizeof t0);
  OPENSSL_cleanse(t, sizeof t);
  return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Chains                                                                                       */

int vault_chain_parse(const char *spec, vault_chain *out) {
  const char *p = spec;
  int dm;
  memset(out, 0, sizeof *out);
  out->legacy = tc_legacy_chain_by_name(spec);
  if (out->legacy != NULL) return 0;
  dm = dm_crypt_parse(spec, &out->dm, errmsg, sizeof errmsg);
  if (dm <= 0) return dm;
  while (1) {
    size_t len = strcspn(p, "-");
    size_t i;
    for (i = 0; i < NCIPHERS; i++)
      if (strlen(CIPHERS[i].name) == len && strncmp(p, CIPHERS[i].name, len) == 0) break;
    if (i == NCIPHERS || out->n == VAULT_CHAIN_MAX) {
      fail("unknown cipher chain '%s'%s: expected up to three of aes, serpent, twofish, camellia, kuznyechik joined by '-'",
           spec, "");
      return -1;
    }
    out->ids[out->n++] = (vault_cipher_id)i;
    if (p[len] == '\0') return 0;
    p += len + 1;
  }
}

size_t vault_chain_key_len(const vault_chain *c) {
  if (c->dm.algo != 0) return c->dm.key_bytes;
  return c->legacy != NULL ? c->legacy->key_bytes : c->n * 2 * VAULT_CIPHER_KEY_LEN;
}

/* A context for a TrueCrypt legacy chain: tc_legacy's schedules (libgcrypt's heap, wiped on close). */
static vault_cipher_ctx *legacy_ctx_new(const vault_chain *c, const uint8_t *key) {
  int err = 0;
  vault_cipher_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    fail("out of memory for a cipher context%s%s", "", "");
    return NULL;
  }
  ctx->legacy = tc_legacy_open(c->legacy, key, c->legacy->key_bytes, &err);
  if (ctx->legacy == NULL) {
    snprintf(errmsg, sizeof errmsg, "cannot set up the TrueCrypt legacy chain %s: %s", c->legacy->name,
             err < 0 ? strerror(-err) : gcry_strerror((gcry_error_t)err));
    free(ctx);
    return NULL;
  }
  return ctx;
}

/* A context for a dm-crypt spec: libgcrypt handles in its secure memory, wiped on close. */
static vault_cipher_ctx *dm_ctx_new(const vault_chain *c, const uint8_t *key) {
  int err = 0;
  vault_cipher_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    fail("out of memory for a cipher context%s%s", "", "");
    return NULL;
  }
  pthread_once(&gcry_once, gcry_init);
  ctx->dm = gcry_ready ? dm_crypt_open(&c->dm, key, &err) : NULL;
  if (ctx->dm == NULL) {
    snprintf(errmsg, sizeof errmsg, "cannot set up the dm-crypt cipher: %s",
             !gcry_ready ? "libgcrypt is too old" : err < 0 ? strerror(-err) : gcry_strerror((gcry_error_t)err));
    free(ctx);
    return NULL;
  }
  return ctx;
}

vault_cipher_ctx *vault_cipher_ctx_new(const vault_chain *c, const uint8_t *key) {
  const size_t n = c->n;
  uint8_t pair[2 * VAULT_CIPHER_KEY_LEN]; /* one cipher's key1 || key2 */
  vault_cipher_ctx *ctx;
  int err = 0;
  if (c->legacy != NULL) return legacy_ctx_new(c, key);
  if (c->dm.algo != 0) return dm_ctx_new(c, key);
  if (n == 0 || n > VAULT_CHAIN_MAX) {
    fail("internal error: a cipher chain of %s%s ciphers", n == 0 ? "zero" : "too many", "");
    return NULL;
  }
  ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) {
    fail("out of memory for a cipher context%s%s", "", "");
    return NULL;
  }
  ctx->n = n;
  for (size_t i = 0; i < n; i++) {
    stage *s = &ctx->st[i];
    const uint8_t *k1 = key + VAULT_CIPHER_KEY_LEN * i, *k2 = key + VAULT_CIPHER_KEY_LEN * (n + i);
    s->id = c->ids[i];
    if (CRYPTO_memcmp(k1, k2, VAULT_CIPHER_KEY_LEN) == 0) {
      /* IEEE 1619-2018 forbids it (libgcrypt checks only in FIPS mode). The same rule for every cipher. */
      fail("invalid XTS key: the two 32-byte %s keys are equal%s", CIPHERS[s->id].name, "");
      goto fail;
    }
    memcpy(pair, k1, VAULT_CIPHER_KEY_LEN);
    memcpy(pair + VAULT_CIPHER_KEY_LEN, k2, VAULT_CIPHER_KEY_LEN);
    if (s->id == VAULT_CIPHER_KUZNYECHIK) {
      if (ctx->kuz_mem == NULL) {
        ctx->kuz_mem = vault_secure_alloc(2 * VAULT_CHAIN_MAX * sizeof(vault_kuz_key), &err);
        if (ctx->kuz_mem == NULL) {
          snprintf(errmsg, sizeof errmsg, "cannot allocate locked memory for a Kuznyechik key schedule: %s", strerror(err));
          goto fail;
        }
      }
      s->kuz = ctx->kuz_mem + 2 * i;
      vault_kuz_set_key(&s->kuz[0], k1);
      vault_kuz_set_key(&s->kuz[1], k2);
    } else {
      const int algo = CIPHERS[s->id].gcry_algo;
      s->gc = gcry_xts_open(algo, pair);
      if (s->gc == NULL) goto fail;
      if (CIPHERS[s->id].bulk_dec &&
          ((s->cbc = gcry_open_keyed(algo, GCRY_CIPHER_MODE_CBC, k1, VAULT_CIPHER_KEY_LEN)) == NULL ||
           (s->ecb2 = gcry_open_keyed(algo, GCRY_CIPHER_MODE_ECB, k2, VAULT_CIPHER_KEY_LEN)) == NULL))
        goto fail;
    }
  }
  OPENSSL_cleanse(pair, sizeof pair);
  return ctx;
fail:
  OPENSSL_cleanse(pair, sizeof pair);
  vault_cipher_ctx_free(ctx);
  return NULL;
}

void vault_cipher_ctx_free(vault_cipher_ctx *ctx) {
  if (ctx == NULL) return;
  tc_legacy_close(ctx->legacy); /* NULL-safe, wipes */
  dm_crypt_close(ctx->dm);
  for (size_t i = 0; i < ctx->n; i++) {
    gcry_cipher_close(ctx->st[i].gc); /* NULL-safe, wipes */
    gcry_cipher_close(ctx->st[i].cbc);
    gcry_cipher_close(ctx->st[i].ecb2);
  }
  vault_secure_free(ctx->kuz_mem, 2 * VAULT_CHAIN_MAX * sizeof(vault_kuz_key)); /* NULL-safe, wipes */
  free(ctx);
}

bool vault_cipher_ctx_locked(const vault_cipher_ctx *ctx) {
  const void *dm[2] = {NULL, NULL};
  bool in = true;
  for (size_t i = 0; i < ctx->n; i++) in = in && in_pool(ctx->st[i].gc) && in_pool(ctx->st[i].cbc) && in_pool(ctx->st[i].ecb2);
  dm_crypt_handles(ctx->dm, dm);
  in = in && in_pool(dm[0]) && in_pool(dm[1]);
  if (!in && pool_hi != 0)
    snprintf(errmsg, sizeof errmsg, "libgcrypt's locked pool (%lu KiB, sized when this process first used libgcrypt) is full",
             (unsigned long)(pool_hi - pool_lo) / 1024);
  else if (!in)
    snprintf(errmsg, sizeof errmsg, "libgcrypt's secure pool was never found locked (vault_cipher_prepare)");
  return in;
}

int vault_cipher_run(vault_cipher_ctx *ctx, uint8_t *buf, size_t len, size_t sector_size, uint64_t first_tweak,
                     uint64_t tweak_step, int encrypt) {
  if (ctx != NULL && ctx->legacy != NULL) {
    int e;
    if (sector_size != TC_LEGACY_SECTOR || tweak_step != 1 || len % TC_LEGACY_SECTOR != 0) {
      snprintf(errmsg, sizeof errmsg, "internal error: a legacy run with sector size %zu, step %llu, length %zu",
               sector_size, (unsigned long long)tweak_step, len);
      return -1;
    }
    e = tc_legacy_sectors(ctx->legacy, buf, len, first_tweak, encrypt != 0);
    if (e != 0) {
      snprintf(errmsg, sizeof errmsg, "TrueCrypt legacy sectors: %s", e < 0 ? strerror(-e) : gcry_strerror((gcry_error_t)e));
      return -1;
    }
    return 0;
  }
  if (ctx != NULL && ctx->dm != NULL) {
    int e;
    if (sector_size < BLOCK || sector_size % BLOCK != 0 || len % sector_size != 0) {
      snprintf(errmsg, sizeof errmsg, "internal error: a dm-crypt run with sector size %zu, length %zu", sector_size, len);
      return -1;
    }
    e = dm_crypt_sectors(ctx->dm, buf, len, sector_size, first_tweak, tweak_step, encrypt);
    if (e != 0) {
      snprintf(errmsg, sizeof errmsg, "dm-crypt sectors: %s", gcry_strerror((gcry_error_t)e));
      return -1;
    }
    return 0;
  }
  if (ctx == NULL || sector_size < BLOCK || sector_size % BLOCK != 0 || sector_size > VAULT_XTS_MAX_SECTOR ||
      len % sector_size != 0) {
    snprintf(errmsg, sizeof errmsg, "internal error: XTS run with %s, sector size %zu, length %zu",
             ctx == NULL ? "no context" : "a bad geometry", sector_size, len);
    return -1;
  }
  for (size_t k = 0; k < ctx->n; k++) {
    stage *s = &ctx->st[encrypt ? k : ctx->n - 1 - k];
    if (s->kuz != NULL) {
      kuz_run(s->kuz, buf, len, sector_size, first_tweak, tweak_step, encrypt);
    } else if (!encrypt && s->cbc != NULL) {
      if (gcry_decrypt_bulk(s, buf, len, sector_size, first_tweak, tweak_step) != 0) return -1;
    } else if (gcry_run(s->gc, buf, len, sector_size, first_tweak, tweak_step, encrypt) != 0) {
      return -1;
    }
  }
  return 0;
}
