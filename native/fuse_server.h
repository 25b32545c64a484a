/*
 * fuse_server: vault's native volume server. Serves one file, `volume`, whose bytes are the
 * decrypted data area of a container, by speaking the FUSE protocol directly on /dev/fuse (no
 * libfuse) from native threads; JavaScript only starts, watches and stops it.
 *
 * vault_fuse_register() adds serve / wait / stop / stats to `exports` (see src/server/fuse-addon.ts
 * for the JS-side contract); vault_native.c's module init calls it. The parts are listed in
 * fuse_internal.h.
 */
#ifndef VAULT_FUSE_SERVER_H
#define VAULT_FUSE_SERVER_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8 /* type tags on Externals */
#endif
#include <node_api.h>

napi_value vault_fuse_register(napi_env env, napi_value exports);

#endif
