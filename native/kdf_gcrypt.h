/* kdf_gcrypt: PBKDF2-HMAC through libgcrypt (gcry_kdf_derive, GCRY_KDF_PBKDF2), on the libuv
   threadpool, for the VeraCrypt/TrueCrypt header hashes node:crypto lacks (Whirlpool only in
   OpenSSL's legacy provider, Streebog not at all). */
#ifndef VAULT_KDF_GCRYPT_H
#define VAULT_KDF_GCRYPT_H
#include <node_api.h>
/* pbkdf2Async(hash, password, salt, iterations, out): Promise<void>. Fills out (1..1024 bytes)
   with PBKDF2-HMAC-<hash>(password, salt, iterations). hash: "sha512", "sha256", "ripemd160",
   "blake2s256", "whirlpool", "streebog512". libgcrypt refuses an empty password (the promise rejects).
   Do not touch password, salt or out until it settles. */
napi_value vault_pbkdf2_start(napi_env env, napi_callback_info info);
#endif
