/* fs_napi: a volume's filesystem, probed (libblkid) and mounted (the kernel's mount API) in-process; see fs_napi.c. */
#ifndef VAULT_FS_NAPI_H
#define VAULT_FS_NAPI_H

#include <node_api.h>

napi_value blkid_probe_fd(napi_env env, napi_callback_info info);
napi_value mount_at(napi_env env, napi_callback_info info);

#endif
