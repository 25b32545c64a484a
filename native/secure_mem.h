/*
 * secure_mem: locked memory for secrets (keys) and plaintext buffers.
 *
 * An allocation is whole pages of a private anonymous mapping: zero-filled by the kernel, locked
 * (never written to swap; MLOCK_ONFAULT: each page from its first write, so untouched buffer pages
 * cost nothing), MADV_DONTDUMP (never in a core dump) and, best effort, MADV_WIPEONFORK (a fork()ed
 * child sees zeros, not a copy). Freeing wipes every page that was written with OPENSSL_cleanse,
 * then munlock()s and munmap()s them.
 *
 * Also the blocking "exactly n bytes" descriptor I/O that moves keys into and out of such memory.
 *
 * No N-API here: usable from any thread. Used by both addons (vault_native's key handles, the
 * volume server's key and I/O buffers).
 */
#ifndef VAULT_SECURE_MEM_H
#define VAULT_SECURE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The mapping length an allocation of `len` bytes occupies (len rounded up to whole pages). */
size_t vault_secure_map_len(size_t len);

/* Returns page-aligned, zeroed, locked memory of at least `len` bytes (len > 0), or NULL with
   *err set to an errno (ENOMEM, EPERM/EAGAIN from mlock when RLIMIT_MEMLOCK is too small). */
void *vault_secure_alloc(size_t len, int *err);

/* The same, locked only if `lock`: memory that RLIMIT_MEMLOCK has no room for (still never in a
   core dump, zeros in a fork()ed child, wiped when freed). */
void *vault_secure_alloc_opt(size_t len, bool lock, int *err);

/* Wipes, unlocks and unmaps memory from vault_secure_alloc(len). NULL-safe. `len` must be the
   length given to vault_secure_alloc. */
void vault_secure_free(void *p, size_t len);

/* Reads exactly `n` bytes from `fd` into `dst`, retrying on EINTR and short reads and polling when
   the descriptor is non-blocking. Returns 0, an errno, or -1 when end of file comes first (then
   *got says how many bytes had arrived). Whatever was read stays in `dst`: the caller wipes it. */
int vault_secure_read_fd(int fd, uint8_t *dst, size_t n, size_t *got);

/* Writes exactly `n` bytes from `src` to `fd`, retrying on EINTR and short writes and polling when
   the descriptor is non-blocking. Returns 0 or an errno. */
int vault_secure_write_fd(int fd, const uint8_t *src, size_t n);

#endif
