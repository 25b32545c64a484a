# vault's N-API addon (plain C, node_api.h only).
#
# OpenSSL: no 'libraries' entry on purpose. The EVP_* / OPENSSL_cleanse symbols are resolved at
# dlopen time against the node binary itself, which exports its bundled OpenSSL; the headers come
# from <nodedir>/include/node/openssl (added by node-gyp's addon.gypi ahead of /usr/include), so
# they match that OpenSSL. Linking the system libcrypto would load a second, different OpenSSL.
#
# Compiler flags and node-gyp's defaults:
#  - common.gypi sets -O3 for Release; we drop it and use -O2 (the hot loop is inside OpenSSL's
#    assembly anyway, so -O3 buys nothing but code size).
#  - common.gypi strips '-Werror' out of 'cflags' ("cflags!": ["-Werror"], because node's own
#    deps are not warning-clean), and that filter also hits a target's own 'cflags'. 'cflags_c'
#    is not filtered and is passed for .c files only, so -Werror lives there.
{
  'targets': [
    {
      # Key handles in locked memory (secure_mem.c), batched XTS (xts_core.c, the same code the
      # volume server runs), a few syscalls.
      'target_name': 'vault_native',
      'sources': ['vault_native.c', 'xts_core.c', 'secure_mem.c', 'napi_util.c'],
      'cflags': ['-O2', '-Wall', '-Wextra', '-fvisibility=hidden'],
      'cflags_c': ['-Werror', '-std=gnu11'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
        },
      },
    },
    {
      # The native volume server (fuse_server.c): FUSE spoken directly on /dev/fuse by worker
      # threads, XTS through node's OpenSSL (xts_core.c), keys and plaintext buffers in locked
      # memory (secure_mem.c). No libfuse. Same flags and OpenSSL arrangement as vault_native.
      'target_name': 'vault_fuse',
      'sources': ['vault_fuse_module.c', 'fuse_server.c', 'xts_core.c', 'secure_mem.c', 'napi_util.c'],
      'cflags': ['-O2', '-Wall', '-Wextra', '-fvisibility=hidden'],
      'cflags_c': ['-Werror', '-std=gnu11'],
      'libraries': ['-lpthread'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
        },
      },
    },
  ],
}
