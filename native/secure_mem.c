/* Locked memory for secrets and plaintext buffers; see secure_mem.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MADV_WIPEONFORK, MADV_DONTDUMP */
#endif
#include "secure_mem.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>

size_t vault_secure_map_len(size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (len + page - 1) / page * page;
}

void *vault_secure_alloc(size_t len, int *err) { return vault_secure_alloc_opt(len, true, err); }

void *vault_secure_alloc_opt(size_t len, bool lock, int *err) {
  size_t map_len;
  void *mem;
  if (len == 0) {
    *err = EINVAL;
    return NULL;
  }
  map_len = vault_secure_map_len(len);
  if (map_len < len) {
    *err = ENOMEM;
    return NULL;
  }
  /* A private anonymous mapping rather than malloc: page-aligned whole pages that share nothing
     with the heap, so mlock/munlock and the final wipe cover exactly our bytes. The kernel hands
     it out zero-filled. */
  mem = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *err = errno;
    return NULL;
  }
  if ((lock && mlock(mem, map_len) != 0) || madvise(mem, map_len, MADV_DONTDUMP) != 0) {
    *err = errno;
    munmap(mem, map_len);
    return NULL;
  }
#ifdef MADV_WIPEONFORK
  /* Best effort (Linux >= 4.14): a fork()ed child, e.g. child_process before its exec, sees zeros
     instead of a copy of the secret. */
  (void)madvise(mem, map_len, MADV_WIPEONFORK);
#endif
  return mem;
}

void vault_secure_free(void *p, size_t len) {
  size_t map_len;
  if (p == NULL) return;
  map_len = vault_secure_map_len(len);
  OPENSSL_cleanse(p, map_len); /* unlike memset, never optimised away */
  munlock(p, map_len);
  munmap(p, map_len);
}

/* Waits for a descriptor left O_NONBLOCK by whoever created it: a key transfer is small and
   expected, so blocking here is intended. 0 or an errno. */
static int wait_fd(int fd, short events) {
  struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
  for (;;) {
    if (poll(&pfd, 1, -1) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int vault_secure_read_fd(int fd, uint8_t *dst, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = read(fd, dst + *got, n - *got);
    int e = errno;
    if (r > 0) {
      *got += (size_t)r;
    } else if (r == 0) {
      return -1; /* pipes deliver short reads; only 0 means end of file */
    } else if (e == EAGAIN || e == EWOULDBLOCK) {
      if ((e = wait_fd(fd, POLLIN)) != 0) return e;
    } else if (e != EINTR) {
      return e;
    }
  }
  return 0;
}

int vault_secure_write_fd(int fd, const uint8_t *src, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = write(fd, src + done, n - done);
    int e = errno;
    if (r >= 0) {
      done += (size_t)r;
    } else if (e == EAGAIN || e == EWOULDBLOCK) {
      if ((e = wait_fd(fd, POLLOUT)) != 0) return e;
    } else if (e != EINTR) {
      return e;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Locking the key schedules OpenSSL keeps on its own heap                                      */

/* Locks one span of pages: mlock (never swapped) and MADV_DONTDUMP (never in a core dump). */
static int lock_span(uintptr_t from, uintptr_t to, size_t page) {
  uintptr_t start = from / page * page;
  uintptr_t end = (to + page - 1) / page * page;
  if (mlock((void *)start, end - start) != 0) return errno;
  (void)madvise((void *)start, end - start, MADV_DONTDUMP);
  return 0;
}

/* Whether [start, end) holds one of the hint addresses. */
static bool holds_hint(unsigned long start, unsigned long end, const void *const *hints, size_t nhints) {
  for (size_t i = 0; i < nhints; i++) {
    uintptr_t a = (uintptr_t)hints[i];
    if (a >= start && a < end) return true;
  }
  return false;
}

int vault_lock_key_copies(const uint8_t *key, size_t len, const void *const *hints, size_t nhints,
                          size_t *pages_locked) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  const size_t piece = 16, around = 256;
  size_t locked = 0;
  int result = 0;
  FILE *maps = fopen("/proc/self/maps", "re");
  uint8_t *chunk = NULL;
  const size_t chunk_len = 1 << 20;
  char line[512];
  if (maps == NULL) {
    result = errno;
    goto out;
  }
  chunk = malloc(chunk_len + piece);
  if (chunk == NULL) {
    result = ENOMEM;
    goto out;
  }
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end;
    char perms[5] = "";
    char name[256] = "";
    if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %255s", &start, &end, perms, name) < 3) continue;
    /* Only private writable memory without a file: the malloc heaps, where OpenSSL allocates.
       With hints, only the main heap and the arenas holding them (V8's heap is not walked). */
    if (strcmp(perms, "rw-p") != 0 || (name[0] != '\0' && strcmp(name, "[heap]") != 0)) continue;
    if (nhints > 0 && strcmp(name, "[heap]") != 0 && !holds_hint(start, end, hints, nhints)) continue;
    for (unsigned long at = start; at < end; at += chunk_len) {
      /* process_vm_readv of ourselves instead of a plain read: another thread (V8's) may unmap
         memory under us, which fails the read instead of crashing the process. (Not a pread of
         /proc/self/mem: once the process is not dumpable, that file is root's, and an ordinary
         user cannot open it.) Overlap by one piece. */
      size_t want = end - at < chunk_len + piece ? end - at : chunk_len + piece;
      struct iovec local = {chunk, want}, remote = {(void *)(uintptr_t)at, want};
      ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
      if (n <= 0) continue;
      for (size_t k = 0; k + piece <= len; k += piece) {
        const uint8_t *p = chunk;
        size_t left = (size_t)n;
        while (left >= piece) {
          const uint8_t *hit = memmem(p, left, key + k, piece);
          if (hit == NULL) break;
          uintptr_t addr = (uintptr_t)at + (uintptr_t)(hit - chunk);
          /* Our own key copy is already locked; skip only what is inside this chunk's range. */
          if ((size_t)(hit - chunk) < chunk_len) {
            /* Clamped to the mapping: mlock fails with ENOMEM on unmapped neighbours. */
            uintptr_t from = addr - start > around ? addr - around : start;
            uintptr_t to = end - addr > piece + around ? addr + piece + around : end;
            int e = lock_span(from, to, page);
            if (e != 0 && result == 0) result = e;
            if (e == 0) locked++;
          }
          left -= (size_t)(hit - p) + 1;
          p = hit + 1;
        }
      }
    }
  }
out:
  if (chunk != NULL) {
    OPENSSL_cleanse(chunk, chunk_len + piece);
    free(chunk);
  }
  if (maps != NULL) fclose(maps);
  if (pages_locked != NULL) *pages_locked = locked;
  return result;
}
