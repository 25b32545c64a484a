/*
 * secure-mem-probe: exercises native/secure_mem.c from outside Node (test/unit/secure-mem.test.ts
 * compiles it with cc). It includes the .c file to reach its static wipe_touched(), and prints one
 * JSON line of facts for the test to check:
 *   residentAtAlloc  pages resident right after vault_secure_alloc (MLOCK_ONFAULT: none)
 *   written          pages the probe wrote (every third page, and one write across three pages)
 *   lockedKb         smaps "Locked:" of the mapping after the writes (the written pages, locked)
 *   lockFlags        smaps VmFlags has "lo" (locked)
 *   residentAfterWipe pages resident after wipe_touched (the written ones only: the wipe faulted
 *                    nothing in)
 *   nonZero          bytes that are not zero after the wipe (must be 0)
 */
#include "../../native/secure_mem.c"

#include <inttypes.h>

#define PAGES 512

static size_t resident(const uint8_t *p, size_t len) {
  unsigned char v[PAGES];
  size_t n = 0;
  if (mincore((void *)p, len, v) != 0) return (size_t)-1;
  for (size_t i = 0; i < len / 4096; i++) n += v[i] & 1;
  return n;
}

/* smaps of the mapping starting at p: its "Locked:" kB and whether VmFlags has "lo". */
static void smaps_of(const uint8_t *p, long *locked_kb, int *lo) {
  char line[512], start[32];
  int in = 0;
  FILE *f = fopen("/proc/self/smaps", "re");
  snprintf(start, sizeof start, "%" PRIxPTR "-", (uintptr_t)p);
  *locked_kb = -1;
  *lo = 0;
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    if (line[strspn(line, "0123456789abcdef")] == '-') in = strncmp(line, start, strlen(start)) == 0; /* a mapping's first line */
    if (!in) continue;
    if (strncmp(line, "Locked:", 7) == 0) *locked_kb = strtol(line + 7, NULL, 10);
    if (strncmp(line, "VmFlags:", 8) == 0) *lo = strstr(line, " lo") != NULL;
  }
  fclose(f);
}

int main(void) {
  const size_t page = (size_t)sysconf(_SC_PAGESIZE), len = PAGES * page;
  int err = 0, lo = 0;
  long locked_kb = 0;
  size_t written = 0, non_zero = 0, at_alloc, after_wipe;
  uint8_t *p;
  if (page != 4096) return 2;
  p = vault_secure_alloc(len, &err);
  if (p == NULL) {
    printf("{\"error\":%d}\n", err);
    return 1;
  }
  at_alloc = resident(p, len);
  for (size_t i = 0; i < PAGES; i += 3, written++) memset(p + i * page, 0xA5, page);
  memset(p + 100 * page + 7, 0x5A, 2 * page); /* pages 100 (written above), 101 and 102 */
  written += 2;
  smaps_of(p, &locked_kb, &lo);
  wipe_touched(p, len);
  after_wipe = resident(p, len); /* before the check below reads (and so maps) every page */
  for (size_t i = 0; i < len; i++) non_zero += p[i] != 0;
  vault_secure_free(p, len);
  printf("{\"residentAtAlloc\":%zu,\"written\":%zu,\"lockedKb\":%ld,\"lockFlags\":%s,\"residentAfterWipe\":%zu,\"nonZero\":%zu}\n",
         at_alloc, written, locked_kb, lo ? "true" : "false", after_wipe, non_zero);
  return 0;
}
