/*
 * The attacker's racer for test/e2e/hardening-files.test.ts, run as an unprivileged user. It swaps
 * directory entries as fast as it can until SIGTERM, then prints "<swaps> <hits>" and exits.
 *
 *   racer partial DIR PREFIX CANARY   every entry DIR/PREFIX* is renamed away and replaced by a
 *                                     symlink to CANARY, and that symlink planted again and again
 *                                     (hits: regular files taken)
 *   racer swap    DIR NAME CANARY     DIR/NAME is renamed away, a symlink to CANARY put in its place,
 *                                     and the file renamed back, over and over
 *   racer plant   DIR NAME CANARY     mkdir DIR (0777) and (re)plant DIR/NAME -> CANARY, over and over
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
  if (argc != 5) return 2;
  const char *mode = argv[1], *dir = argv[2], *name = argv[3], *canary = argv[4];
  unsigned long swaps = 0, hits = 0, n = 0;
  char a[4096], b[4096];
  signal(SIGTERM, on_term);
  if (chdir(dir) != 0 && strcmp(mode, "plant") != 0) return 3;
  while (!stop) {
    if (strcmp(mode, "partial") == 0) {
      DIR *d = opendir(".");
      if (!d) return 4;
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, name, strlen(name)) != 0 || strstr(e->d_name, ".stolen")) continue;
        struct stat st;
        if (lstat(e->d_name, &st) != 0) continue;
        if (S_ISLNK(st.st_mode)) {
          /* our own plant: plant a fresh one over it (atomically, so the name never goes missing) */
          snprintf(b, sizeof b, "%s.stolen-link", e->d_name);
          if (symlink(canary, b) == 0 && rename(b, e->d_name) == 0) swaps++;
          continue;
        }
        snprintf(a, sizeof a, "%s.stolen%lu", e->d_name, n++);
        if (rename(e->d_name, a) != 0) continue;
        if (S_ISREG(st.st_mode)) hits++;
        if (symlink(canary, e->d_name) == 0) swaps++;
      }
      closedir(d);
    } else if (strcmp(mode, "swap") == 0) {
      snprintf(a, sizeof a, "%s.real", name);
      if (rename(name, a) != 0) continue;
      if (symlink(canary, name) == 0) swaps++;
      for (volatile int i = 0; i < 2000; i++) {
      }
      if (rename(a, name) == 0) hits++;
    } else {
      if (mkdir(dir, 0777) == 0) chmod(dir, 0777);
      snprintf(b, sizeof b, "%s/%s", dir, name);
      unlink(b);
      if (symlink(canary, b) == 0) swaps++;
      usleep(200);
    }
  }
  printf("%lu %lu\n", swaps, hits);
  return 0;
}
