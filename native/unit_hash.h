/* unit_hash: SHA-256 of each fixed-size unit of a buffer, on the libuv threadpool (re-encryption's
   journal, spec/format.md §13.3). */
#ifndef VAULT_UNIT_HASH_H
#define VAULT_UNIT_HASH_H
#include <node_api.h>
/* unitHashesAsync(buf, unitSize, out): Promise<void>. out[16·i .. 16·i+16) = the first 16 bytes of
   SHA-256 over unit i of buf (the last unit may be shorter). Do not touch buf or out until it settles. */
napi_value vault_unit_hashes_start(napi_env env, napi_callback_info info);
#endif
