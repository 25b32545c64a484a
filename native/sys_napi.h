/*
 * sys_napi: the syscalls Node does not expose, for vault_native's exports: prctl
 * (PR_SET_DUMPABLE, PR_SET_IO_FLUSHER), flock, pipe2, descriptors over a unix socket (SCM_RIGHTS), dup2, umount2, BLKDISCARD, LOOP_CONFIGURE, kernel capability probes, and
 * openat / renameat2 / unlinkat relative to a directory descriptor. JS thread only.
 */
#ifndef VAULT_SYS_NAPI_H
#define VAULT_SYS_NAPI_H

#include <node_api.h>

napi_value harden_process(napi_env env, napi_callback_info info);
napi_value is_dumpable(napi_env env, napi_callback_info info);
napi_value flock_fd(napi_env env, napi_callback_info info);
napi_value make_pipe(napi_env env, napi_callback_info info);
napi_value send_fds(napi_env env, napi_callback_info info);
napi_value recv_fds(napi_env env, napi_callback_info info);
napi_value dup2_fd(napi_env env, napi_callback_info info);
napi_value probe_socket(napi_env env, napi_callback_info info);
napi_value set_io_flusher(napi_env env, napi_callback_info info);
napi_value umount_path(napi_env env, napi_callback_info info);
napi_value blk_discard(napi_env env, napi_callback_info info);
napi_value loop_attach(napi_env env, napi_callback_info info);
napi_value openat_fd(napi_env env, napi_callback_info info);
napi_value renameat_fd(napi_env env, napi_callback_info info);
napi_value unlinkat_fd(napi_env env, napi_callback_info info);

#endif
