/* Locked memory for secrets and plaintext buffers; see secure_mem.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MADV_WIPEONFORK, MADV_DONTDUMP */
#endif
#include "secure_mem.h"

#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>

size_t vault_secure_map_len(size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (len + page - 1) / page * page;
}

void *vault_secure_alloc(size_t len, int *err) {
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
  mem = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *err = errno;
    return NULL;
  }
  if (mlock(mem, map_len) != 0 || madvise(mem, map_len, MADV_DONTDUMP) != 0) {
    *err = errno;
    munmap(mem, map_len);
    return NULL;
  }
#ifdef MADV_WIPEONFORK
  (void)madvise(mem, map_len, MADV_WIPEONFORK); /* Linux >= 4.14; best effort */
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

int vault_secure_read_fd(int fd, uint8_t *dst, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    ssize_t r = read(fd, dst + *got, n - *got);
    int e = errno;
    if (r > 0) {
      *got += (size_t)r;
    } else if (r == 0) {
      return -1;
    } else if (e == EAGAIN || e == EWOULDBLOCK) {
      struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return errno;
    } else if (e != EINTR) {
      return e;
    }
  }
  return 0;
}
