/* The vault_fuse addon: only the volume server (fuse_server.c), kept apart from vault_native so it
   can later be folded into it by calling vault_fuse_register from that module's init. */
#define NAPI_VERSION 8
#include "fuse_server.h"

NAPI_MODULE_INIT() { return vault_fuse_register(env, exports); }
