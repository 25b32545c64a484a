/*
 * Kuznyechik, RFC 7801 (GOST R 34.12-2015): a 10-round SP network. Written from the RFC's
 * definitions (section 4: the S-box pi, the linear map L as 16 steps of R over GF(2^8) modulo
 * x^8 + x^7 + x^6 + x + 1 with the coefficients of l, the key schedule's Feistel network with the
 * constants C_i = L(Vec128(i))); checked against RFC 7801 section 5 (test/unit/native-ciphers).
 *
 * Speed: the usual table form. S then L of a block is the XOR of 16 table entries, one per byte
 * position (L is linear over GF(2)): LS[i][b] = L(block with byte i = pi(b), others 0). Decryption
 * runs with L^-1 S^-1 tables the same way, the round keys moved through L^-1 (see
 * vault_kuz_decrypt). The three 64 KiB tables are computed once per process from pi and l; they
 * hold no secret. Table lookups indexed by secret bytes are not constant-time (cache timing), as in
 * VeraCrypt's and the Linux kernel's portable versions of this cipher.
 */
#include "kuznyechik.h"

#include <pthread.h>
#include <string.h>

static const uint8_t PI[256] = {
    252, 238, 221, 17,  207, 110, 49,  22,  251, 196, 250, 218, 35,  197, 4,   77,  233, 119, 240, 219, 147, 46,
    153, 186, 23,  54,  241, 187, 20,  205, 95,  193, 249, 24,  101, 90,  226, 92,  239, 33,  129, 28,  60,  66,
    139, 1,   142, 79,  5,   132, 2,   174, 227, 106, 143, 160, 6,   11,  237, 152, 127, 212, 211, 31,  235, 52,
    44,  81,  234, 200, 72,  171, 242, 42,  104, 162, 253, 58,  206, 204, 181, 112, 14,  86,  8,   12,  118, 18,
    191, 114, 19,  71,  156, 183, 93,  135, 21,  161, 150, 41,  16,  123, 154, 199, 243, 145, 120, 111, 157, 158,
    178, 177, 50,  117, 25,  61,  255, 53,  138, 126, 109, 84,  198, 128, 195, 189, 13,  87,  223, 245, 36,  169,
    62,  168, 67,  201, 215, 121, 214, 246, 124, 34,  185, 3,   224, 15,  236, 222, 122, 148, 176, 188, 220, 232,
    40,  80,  78,  51,  10,  74,  167, 151, 96,  115, 30,  0,   98,  68,  26,  184, 56,  130, 100, 159, 38,  65,
    173, 69,  70,  146, 39,  94,  85,  47,  140, 163, 165, 125, 105, 213, 149, 59,  7,   88,  179, 64,  134, 172,
    29,  247, 48,  55,  107, 228, 136, 217, 231, 137, 225, 27,  131, 73,  76,  63,  248, 254, 141, 83,  170, 144,
    202, 216, 133, 97,  32,  113, 103, 164, 45,  43,  9,   91,  203, 155, 37,  208, 190, 229, 108, 82,  89,  166,
    116, 210, 230, 244, 180, 192, 209, 102, 175, 194, 57,  75,  99,  182,
};
/* The coefficients of l for a_15 ... a_0 (RFC 7801 section 4.1.2). */
static const uint8_t L_COEFF[16] = {148, 32, 133, 16, 194, 192, 1, 251, 1, 192, 194, 16, 133, 32, 148, 1};

static uint8_t PI_INV[256];
/* LS[i][b] = L(pi(b) at byte i, zeros elsewhere); ILS[i][b] = L^-1(pi^-1(b) at byte i, zeros elsewhere).
   L(S(x)) is then the XOR over i of LS[i][x_i] (L is linear), and likewise L^-1(S^-1(x)). */
static uint64_t LS[16][256][2], ILS[16][256][2];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Multiplication in GF(2^8) modulo x^8 + x^7 + x^6 + x + 1. */
static uint8_t gf_mul(uint8_t a, uint8_t b) {
  unsigned r = 0, x = a;
  for (; b; b >>= 1) {
    if (b & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= 0x1c3;
  }
  return (uint8_t)r;
}

/* R(a_15..a_0) = l(a_15..a_0) || a_15..a_1, byte 0 being a_15. */
static void step_r(uint8_t x[16]) {
  uint8_t l = 0;
  for (int i = 0; i < 16; i++) l ^= gf_mul(x[i], L_COEFF[i]);
  memmove(x + 1, x, 15);
  x[0] = l;
}

static void step_r_inv(uint8_t x[16]) {
  uint8_t l = x[0];
  memmove(x, x + 1, 15);
  for (int i = 0; i < 15; i++) l ^= gf_mul(x[i], L_COEFF[i]);
  x[15] = l;
}

static void linear(uint8_t x[16]) {
  for (int i = 0; i < 16; i++) step_r(x);
}

static void linear_inv(uint8_t x[16]) {
  for (int i = 0; i < 16; i++) step_r_inv(x);
}

/* L and L^-1 are linear over GF(2): the image of byte value v at position i is the XOR of the
   images of v's set bits, so 2 x 128 evaluations of L build all 2 x 4096 entries. */
static void build_tables(void) {
  uint8_t basis[2][16][8][16];
  for (int b = 0; b < 256; b++) PI_INV[PI[b]] = (uint8_t)b;
  for (int i = 0; i < 16; i++)
    for (int k = 0; k < 8; k++) {
      memset(basis[0][i][k], 0, 16);
      basis[0][i][k][i] = (uint8_t)(1u << k);
      memcpy(basis[1][i][k], basis[0][i][k], 16);
      linear(basis[0][i][k]);
      linear_inv(basis[1][i][k]);
    }
  for (int i = 0; i < 16; i++)
    for (int b = 0; b < 256; b++) {
      uint8_t f[16] = {0}, v[16] = {0};
      for (int k = 0; k < 8; k++)
        for (int j = 0; j < 16; j++) {
          if (PI[b] >> k & 1) f[j] ^= basis[0][i][k][j];
          if (PI_INV[b] >> k & 1) v[j] ^= basis[1][i][k][j];
        }
      memcpy(LS[i][b], f, 16);
      memcpy(ILS[i][b], v, 16);
    }
}

/* x = T(x) for a table T (LS or ILS): XOR of one entry per byte position. */
static inline void table_pass(uint64_t t[16][256][2], uint64_t x[2]) {
  uint8_t b[16];
  uint64_t lo = 0, hi = 0;
  memcpy(b, x, 16);
  for (int i = 0; i < 16; i++) {
    lo ^= t[i][b[i]][0];
    hi ^= t[i][b[i]][1];
  }
  x[0] = lo;
  x[1] = hi;
}

void vault_kuz_set_key(vault_kuz_key *k, const uint8_t key[32]) {
  uint8_t a[16], b[16], t[16], c[16];
  pthread_once(&tables_once, build_tables);
  memcpy(a, key, 16);
  memcpy(b, key + 16, 16);
  memcpy(k->ek[0], a, 16);
  memcpy(k->ek[1], b, 16);
  for (int i = 0; i < 32; i++) {
    /* C_{i+1} = L(Vec128(i + 1)); (a, b) = (L(S(a ^ C)) ^ b, a). */
    memset(c, 0, 16);
    c[15] = (uint8_t)(i + 1);
    linear(c);
    for (int j = 0; j < 16; j++) t[j] = PI[a[j] ^ c[j]];
    linear(t);
    for (int j = 0; j < 16; j++) t[j] ^= b[j];
    memcpy(b, a, 16);
    memcpy(a, t, 16);
    if (i % 8 == 7) {
      memcpy(k->ek[2 + 2 * (i / 8)], a, 16);
      memcpy(k->ek[3 + 2 * (i / 8)], b, 16);
    }
  }
  memcpy(k->dk[0], k->ek[0], 16);
  for (int r = 1; r < 10; r++) {
    memcpy(t, k->ek[r], 16);
    linear_inv(t);
    memcpy(k->dk[r], t, 16);
  }
  /* Volatile stores, so the compiler keeps them. */
  volatile uint8_t *w[] = {a, b, t, c};
  for (size_t p = 0; p < 4; p++)
    for (int j = 0; j < 16; j++) w[p][j] = 0;
}

void vault_kuz_encrypt(const vault_kuz_key *k, uint8_t block[16]) {
  uint64_t x[2];
  memcpy(x, block, 16);
  for (int r = 0; r < 9; r++) {
    x[0] ^= k->ek[r][0];
    x[1] ^= k->ek[r][1];
    table_pass(LS, x);
  }
  x[0] ^= k->ek[9][0];
  x[1] ^= k->ek[9][1];
  memcpy(block, x, 16);
}

/*
 * Decryption is ^K_10, then nine times (L^-1, S^-1, ^K_r). Since L^-1 is linear,
 * L^-1(S^-1(y) ^ K) = ILS(y) ^ L^-1(K), so: y = L^-1(x ^ K_10) = ILS(pi(x)) ^ L^-1(K_10), eight
 * rounds y = ILS(y) ^ L^-1(K_r), and finally S^-1(y) ^ K_1.
 */
void vault_kuz_decrypt(const vault_kuz_key *k, uint8_t block[16]) {
  uint64_t x[2];
  uint8_t *b = block;
  for (int j = 0; j < 16; j++) b[j] = PI[b[j]];
  memcpy(x, b, 16);
  table_pass(ILS, x);
  for (int r = 9; r >= 1; r--) {
    if (r < 9) table_pass(ILS, x);
    x[0] ^= k->dk[r][0];
    x[1] ^= k->dk[r][1];
  }
  memcpy(b, x, 16);
  for (int j = 0; j < 16; j++) b[j] = PI_INV[b[j]];
  for (int j = 0; j < 16; j++) b[j] ^= ((const uint8_t *)k->dk[0])[j];
}
