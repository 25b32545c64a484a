# vault's N-API addon (plain C, node_api.h only): one addon, so the XTS core and the locked
# memory are linked once.
#
# OpenSSL: no 'libraries' entry on purpose. The EVP_* / OPENSSL_cleanse symbols are resolved at
# dlopen time against the node binary itself, which exports its bundled OpenSSL; the headers come
# from <nodedir>/include/node/openssl (added by node-gyp's addon.gypi ahead of /usr/include), so
# they match that OpenSSL. Linking the system libcrypto would load a second, different OpenSSL.
# libfido2 and tpm2-tss (opened at their first use: token_libs.c) do pull in Debian's libcrypto.so.3,
# but their OpenSSL calls bind to node's exported OPENSSL_3.0.0 symbols, which come first in the
# lookup scope (LD_DEBUG=bindings: all of libfido2's ~100 OpenSSL symbols resolve to node); both are
# OpenSSL 3.0 with one ABI.
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
      'target_name': 'vault_native',
      'sources': [
        # Key handles, batched XTS for JS, a few syscalls (vault_native.c); shared helpers.
        'vault_native.c', 'napi_util.c', 'secure_mem.c', 'unit_hash.c',
        # Argon2 for vault and LUKS (libargon2); the VeraCrypt/TrueCrypt header-key derivations
        # (PBKDF2 with every header hash, Argon2id), stoppable while they run.
        'kdf.c',
        # XTS over every cipher chain: AES, Serpent, Twofish and Camellia through libgcrypt,
        # Kuznyechik of our own (libgcrypt 1.10 lacks it).
        'cipher_engine.c', 'kuznyechik.c',
        # The syscalls Node does not expose (prctl, flock, pipe2, openat, LOOP_CONFIGURE & co.).
        'sys_napi.c',
        # A volume's filesystem type through libblkid, as `blkid -p` (no process).
        'fs_napi.c',
        # The volume server: FUSE spoken directly on /dev/fuse by native threads (fuse_*.c; see
        # fuse_internal.h for which file does what).
        'fuse_napi.c', 'fuse_session.c', 'fuse_mount.c', 'fuse_user.c', 'fuse_classic.c', 'fuse_uring.c', 'fuse_ops.c',
        'fuse_io.c', 'fuse_protect.c',
        # TrueCrypt's legacy LRW and CBC modes over libgcrypt's block ciphers.
        'tc_legacy.c', 'tc_legacy_napi.c',
        # dm-crypt CBC and XTS specs the chain path lacks (LUKS aes-cbc-essiv:sha256, 256-bit XTS keys) over libgcrypt.
        'dm_crypt.c',
        # TPM2 keyslots: seal/unseal a secret under a PCR policy (and a PIN) through tpm2-tss's ESAPI.
        'tpm2.c', 'tpm2_napi.c',
        # FIDO2 hmac-secret credentials through libfido2, over hidraw or a unix socket transport.
        'fido2.c',
        # libfido2 and tpm2-tss, opened at their first use (dlopen), not with the addon.
        'token_libs.c',
      ],
      'cflags': ['-O2', '-Wall', '-Wextra', '-fvisibility=hidden'],
      # Bind every symbol at load (and full RELRO): a library missing at run time fails the load
      # with its name, never a later call in the middle of a mount. (libfido2 and tpm2-tss are the
      # exception: only enrolment and token unlock use them, and a missing one fails that call with
      # what to install. Linked, their dlopen was ~8 ms of every vault process's start.)
      'ldflags': ['-Wl,-z,now', '-Wl,-z,relro'],
      'cflags_c': ['-Werror', '-std=gnu11'],
      # liburing (Debian: liburing-dev to build, liburing2 at run time): the FUSE-over-io_uring
      # transport (fuse_uring.c). libgcrypt (Debian: libgcrypt20-dev to build, libgcrypt20 at run
      # time): Serpent, Twofish and Camellia (cipher_engine.c), the block ciphers of TrueCrypt's
      # legacy modes (tc_legacy.c), HMAC for PBKDF2 with RIPEMD-160, Whirlpool and Streebog, and
      # VeraCrypt's Argon2id (kdf.c). tpm2-tss (Debian: libtss2-dev for its headers;
      # libtss2-esys-3.0.2-0, -mu0, -rc0, -tctildr0 and the TCTIs
      # libtss2-tcti-device0 / -swtpm0 at run time, opened by token_libs.c): TPM2 sealing (tpm2.c).
      # libfido2 (Debian: libfido2-dev for its headers, libfido2-1 at run time, opened by
      # token_libs.c): FIDO2 keyslots (fido2.c). libblkid (Debian:
      # libblkid-dev to build, libblkid1 at run time): the filesystem type of a volume (fs_napi.c).
      # libargon2 (Debian: libargon2-dev to build, libargon2-1 at run time): vault's and LUKS's
      # Argon2 (kdf.c), in memory we place ourselves.
      'libraries': ['-lpthread', '-luring', '-lgcrypt', '-lblkid', '-largon2'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
        },
      },
    },
  ],
}
