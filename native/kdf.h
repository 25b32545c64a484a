/* kdf: the password-based key derivations. vault's and LUKS's Argon2 through libargon2 (below), and
   the VeraCrypt/TrueCrypt header-key derivations, on the libuv threadpool, each of which can be
   stopped while it runs (a cancel flag the derivation loop reads): autodetection tries every PRF at
   once and stops the others at the first header that opens.

   PBKDF2-HMAC is our own loop (RFC 8018 §5.2) over OpenSSL's digests (Node's OpenSSL: SHA-1,
   SHA-256, SHA-512, BLAKE2s-256) or libgcrypt's HMAC (RIPEMD-160, Whirlpool, Streebog, which
   OpenSSL lacks or runs slower), so that it can compute any range of output blocks T_i alone:
   each T_i depends only on the password, the salt, i and the count, so blocks first..last are
   exactly that slice of the whole derivation. Argon2id is libgcrypt's (gcry_kdf_open/compute),
   whose segments we run ourselves through gcry_kdf_thread_ops_t, skipping the rest once cancelled. */
#ifndef VAULT_KDF_H
#define VAULT_KDF_H
#include <node_api.h>
/* pbkdf2Async(hash, password, salt, iterations, out, firstBlock, cancel): Promise<void>. Fills out
   (1..1024 bytes) with PBKDF2-HMAC-<hash>(password, salt, iterations) from the start of output
   block firstBlock (1-based, RFC 8018's T_i). hash: "sha1", "sha256", "sha512", "blake2s256",
   "ripemd160", "whirlpool", "streebog512". cancel: null, or a Uint8Array whose byte 0 turning
   non-zero stops the loop within 1024 iterations: the promise then rejects with code
   ERR_VAULT_CANCELLED and out is zeroed. Do not touch password, salt or out until it settles. */
napi_value vault_pbkdf2_start(napi_env env, napi_callback_info info);
/* argon2idAsync(password, salt, memoryKiB, passes, lanes, out, cancel): Promise<void>. Fills out
   (1..1024 bytes) with Argon2id version 0x13 (no secret, no associated data); cancel as above,
   checked before each segment (memory / 4·lanes blocks of one pass). */
napi_value vault_argon2id_start(napi_env env, napi_callback_info info);
/* argon2Async(variant, password, salt, memoryKiB, passes, lanes, out, secret, associatedData):
   Promise<void>. Fills out (4..1024 bytes) with Argon2i or Argon2id ("argon2i", "argon2id"),
   version 0x13, through Debian's libargon2 with `lanes` threads: vault's keyslots and LUKS's.
   secret and associatedData: null or at most 1024 bytes. Not cancellable. Its memory (up to 4 GiB)
   is a mapping of our own, on huge pages where the kernel has them, locked where RLIMIT_MEMLOCK has
   room, wiped by libargon2 before it is unmapped. Do not touch the buffers until it settles. */
napi_value vault_argon2_start(napi_env env, napi_callback_info info);
#endif
