/* unit_hash: per fixed-size unit of a buffer, SHA-256 on the libuv threadpool (re-encryption's
   journal, spec/format.md §13.3) and which units are all zero (holes, §8 and §13.4). */
#ifndef VAULT_UNIT_HASH_H
#define VAULT_UNIT_HASH_H
#include <node_api.h>
/* unitHashesAsync(buf, unitSize, out): Promise<void>. out[16·i .. 16·i+16) = the first 16 bytes of
   SHA-256 over unit i of buf (the last unit may be shorter). Do not touch buf or out until it settles. */
napi_value vault_unit_hashes_start(napi_env env, napi_callback_info info);
/* zeroUnits(buf, unitSize, out): number. out[i] = 1 where unit i of buf (the last may be shorter)
   is all zero bytes, else 0; returns how many are. Synchronous: a memory scan. */
napi_value vault_zero_units(napi_env env, napi_callback_info info);
#endif
