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
#include <unistd.h>

#include <openssl/crypto.h>

size_t vault_secure_map_len(size_t len) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  return (len + page - 1) / page * page;
}

void *vault_secure_alloc(size_t len, int *err) { return vault_secure_alloc_opt(len, true, err); }

/* Locks the range as it is touched (MLOCK_ONFAULT, Linux 4.4+) rather than faulting every page in
   now: a page holds nothing until it is first written, and is locked from that moment, so nothing
   written there can reach swap. RLIMIT_MEMLOCK is charged for the whole range at once, as with
   mlock. What it saves: a volume server's I/O buffers (2 MiB per classic worker, 32 MiB for 16) were
   all faulted in on the mount's critical path (about 8 ms of serve()'s 12, `perf record` of
   serveNative) and all written over again by the wipe at dismount, most of them never used
   (`vault_secure_free` now wipes the pages that were). Kernels without it get plain mlock. */
static int lock_on_fault(void *mem, size_t len) {
#ifdef MLOCK_ONFAULT
  if (mlock2(mem, len, MLOCK_ONFAULT) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
#endif
  return mlock(mem, len);
}

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
  if ((lock && lock_on_fault(mem, map_len) != 0) || madvise(mem, map_len, MADV_DONTDUMP) != 0) {
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

/* OPENSSL_cleanse (unlike memset, never optimised away) over the pages of [p, p + map_len) that
   were ever written: mincore() says which are resident. A page that is not has never been written
   (it is locked from its first fault: lock_on_fault) and holds nothing; writing zeros to it would
   only fault it in. An unlocked allocation's page that went to swap is not resident either: its
   copy is in swap whatever we do here (secure_mem.h). If mincore fails, everything is wiped. */
static void wipe_touched(uint8_t *p, size_t map_len) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char vec[256];
  for (size_t off = 0; off < map_len; off += sizeof vec * page) {
    size_t n = (map_len - off) / page < sizeof vec ? (map_len - off) / page : sizeof vec;
    if (mincore(p + off, n * page, vec) != 0) {
      OPENSSL_cleanse(p + off, n * page);
      continue;
    }
    for (size_t i = 0; i < n;) { /* one call per run of resident pages */
      size_t j = i;
      while (j < n && (vec[j] & 1)) j++;
      if (j > i) OPENSSL_cleanse(p + off + i * page, (j - i) * page);
      i = j + 1;
    }
  }
}

void vault_secure_free(void *p, size_t len) {
  size_t map_len;
  if (p == NULL) return;
  map_len = vault_secure_map_len(len);
  wipe_touched(p, map_len);
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
