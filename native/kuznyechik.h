/*
 * Kuznyechik (GOST R 34.12-2015, RFC 7801): 128-bit blocks, 256-bit key. libgcrypt 1.10 lacks it,
 * so vault carries its own, written from RFC 7801's definitions; see kuznyechik.c.
 *
 * Byte order: a block or key is the byte string as RFC 7801 prints it, most significant byte
 * first (a_15 ... a_0), which is how VeraCrypt stores its vectors, so RFC 7801 section 5 applies
 * byte for byte.
 */
#ifndef VAULT_KUZNYECHIK_H
#define VAULT_KUZNYECHIK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t ek[10][2]; /* K_1..K_10 */
  uint64_t dk[10][2]; /* decryption: L^-1(K_i) for i = 2..10 (dk[1..9]), K_1 (dk[0]) */
} vault_kuz_key;

/* Expands `key` (32 bytes). Thread-safe (the tables are built once). */
void vault_kuz_set_key(vault_kuz_key *k, const uint8_t key[32]);
/* One block in place. */
void vault_kuz_encrypt(const vault_kuz_key *k, uint8_t block[16]);
void vault_kuz_decrypt(const vault_kuz_key *k, uint8_t block[16]);

#endif
