/*
 * vault's own single-file exerciser (issue 20), written for this project: random operations on one
 * file, each checked against an in-memory model of what the file must hold.
 *
 *   fsx [-N ops] [-S seed] [-l maxlen] [-o maxoplen] [-W model] [-x ops] [-D] [-q] FILE
 *   fsx -c MODEL FILE        only compare FILE with a model saved by -W (after a drop_caches or remount)
 *
 * Operations: read, write, mmap read, mmap write, truncate (grow and shrink), fallocate (keep-size
 * and extending), punch hole, zero range (keep-size and extending), collapse range, insert range
 * (block-aligned), fsync, fdatasync, close and reopen, and with -D O_DIRECT reads and writes. -x
 * takes letters of operations to leave out (m: mmap, f: fallocate family, c: collapse/insert,
 * r: reopen). The sequence depends only on the seed; every read and the whole file at the end are
 * checked. A mismatch prints the offset, the expected and the read bytes and the last 50
 * operations, and exits 1; a system call failing for any other reason than "unsupported" exits 2.
 * Operations the filesystem does not support (EOPNOTSUPP) are switched off and reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

enum op {
  OP_READ, OP_WRITE, OP_MAPREAD, OP_MAPWRITE, OP_TRUNCATE, OP_FALLOC_KEEP, OP_FALLOC_EXTEND,
  OP_PUNCH, OP_ZERO_KEEP, OP_ZERO_EXTEND, OP_COLLAPSE, OP_INSERT, OP_FSYNC, OP_FDATASYNC,
  OP_REOPEN, OP_DREAD, OP_DWRITE, OP_COUNT
};
static const char *op_names[OP_COUNT] = {
  "read", "write", "mapread", "mapwrite", "truncate", "falloc_keep", "falloc_extend",
  "punch_hole", "zero_keep", "zero_extend", "collapse", "insert", "fsync", "fdatasync",
  "reopen", "direct_read", "direct_write",
};
/* Relative weights of the operations (0: never). */
static unsigned weight[OP_COUNT] = { 20, 20, 8, 8, 5, 3, 3, 4, 3, 2, 2, 2, 1, 1, 1, 0, 0 };

static const char *path;
static int fd = -1, dfd = -1;
static unsigned char *good, *buf, *dbuf;
static uint64_t file_size, maxlen = 256 * 1024, maxoplen = 64 * 1024, blksz = 4096, pagesz;
static unsigned long counts[OP_COUNT], opnum;
static int disabled[OP_COUNT], quiet;

/* splitmix64: the whole run follows from the seed. */
static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

#define HISTORY 50
static struct { unsigned long n; int op; uint64_t off, len, size_before; } hist[HISTORY];

static void log_op(int op, uint64_t off, uint64_t len) {
  unsigned long i = opnum % HISTORY;
  hist[i].n = opnum; hist[i].op = op; hist[i].off = off; hist[i].len = len; hist[i].size_before = file_size;
}

static void dump_history(int64_t bad) {
  fprintf(stderr, "last operations (oldest first; * = covers offset %" PRId64 "):\n", bad);
  for (unsigned long k = opnum >= HISTORY ? opnum - HISTORY + 1 : 0; k <= opnum; k++) {
    unsigned long i = k % HISTORY;
    if (hist[i].n != k) continue;
    int covers = bad >= 0 && (uint64_t)bad >= hist[i].off && (uint64_t)bad < hist[i].off + hist[i].len;
    fprintf(stderr, "  %c op %lu %-13s off 0x%" PRIx64 " len 0x%" PRIx64 " (size before 0x%" PRIx64 ")\n",
            covers ? '*' : ' ', k, op_names[hist[i].op], hist[i].off, hist[i].len, hist[i].size_before);
  }
}

__attribute__((noreturn)) static void die(int code, int64_t bad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fsx: FAILED at op %lu: ", opnum);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  dump_history(bad);
  exit(code);
}
/* A system call failed: what it was (printf-style), and errno's message; exits 2. */
__attribute__((noreturn)) static void SYSFAIL(const char *fmt, ...) {
  int e = errno;
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  die(2, -1, "%s: %s", what, strerror(e));
}

/* Compares `len` bytes read at `off` with the model; on a difference, reports it and exits 1. */
static void check(const unsigned char *got, uint64_t off, uint64_t len, const char *how) {
  if (memcmp(got, good + off, len) == 0) return;
  uint64_t i = 0;
  while (got[i] == good[off + i]) i++;
  uint64_t bad = off + i, n = len - i < 16 ? len - i : 16;
  fprintf(stderr, "fsx: %s mismatch at file offset 0x%" PRIx64 " (%" PRIu64 "), file size 0x%" PRIx64 "\n",
          how, bad, bad, file_size);
  fprintf(stderr, "  expected:");
  for (uint64_t k = 0; k < n; k++) fprintf(stderr, " %02x", good[bad + k]);
  fprintf(stderr, "\n  got:     ");
  for (uint64_t k = 0; k < n; k++) fprintf(stderr, " %02x", got[i + k]);
  fputc('\n', stderr);
  die(1, (int64_t)bad, "%s of 0x%" PRIx64 " bytes at 0x%" PRIx64 " returned wrong data", how, len, off);
}

static void check_size(const char *after) {
  struct stat st;
  if (fstat(fd, &st) < 0) SYSFAIL("fstat after %s", after);
  if ((uint64_t)st.st_size != file_size)
    die(1, -1, "file size is 0x%" PRIx64 " after %s, expected 0x%" PRIx64, (uint64_t)st.st_size, after, file_size);
}

static void full_read(int f, unsigned char *dst, uint64_t off, uint64_t len, const char *what) {
  while (len) {
    ssize_t r = pread(f, dst, len, (off_t)off);
    if (r < 0) SYSFAIL("%s pread", what);
    if (r == 0) die(1, (int64_t)off, "%s: unexpected end of file at 0x%" PRIx64, what, off);
    dst += r; off += (uint64_t)r; len -= (uint64_t)r;
  }
}

static void full_write(int f, const unsigned char *src, uint64_t off, uint64_t len, const char *what) {
  while (len) {
    ssize_t r = pwrite(f, src, len, (off_t)off);
    if (r <= 0) SYSFAIL("%s pwrite", what);
    src += r; off += (uint64_t)r; len -= (uint64_t)r;
  }
}

/* Fresh data for op `opnum`: distinct from every other op's, never all zero. */
static void fill(unsigned char *dst, uint64_t len) {
  uint64_t s = rng_state ^ (opnum * 0x2545f4914f6cdd1dULL);
  for (uint64_t i = 0; i < len; i++) {
    if (i % 8 == 0) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; }
    dst[i] = (unsigned char)((s >> (8 * (i % 8))) | 1);
  }
}

static void open_file(int flags) {
  fd = open(path, O_RDWR | flags, 0644);
  if (fd < 0) SYSFAIL("open %s", path);
  if (weight[OP_DREAD] || weight[OP_DWRITE]) {
    dfd = open(path, O_RDWR | O_DIRECT);
    if (dfd < 0) SYSFAIL("open %s with O_DIRECT", path);
  }
}

static void close_file(void) {
  if (close(fd) < 0) SYSFAIL("close %s", path);
  if (dfd >= 0 && close(dfd) < 0) SYSFAIL("close %s (O_DIRECT)", path);
  fd = dfd = -1;
}

static void set_size(uint64_t size) {
  if (size < file_size) memset(good + size, 0, file_size - size);
  file_size = size;
}

static void do_mmap(int write, uint64_t off, uint64_t len) {
  if (write && off + len > file_size) {
    /* A mapping cannot extend a file: grow it first, as fsx's mapwrite does. */
    if (ftruncate(fd, (off_t)(off + len)) < 0) SYSFAIL("ftruncate before mapwrite");
    set_size(off + len);
  }
  uint64_t pg = off - off % pagesz, span = off + len - pg;
  unsigned char *p = mmap(NULL, span, write ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, (off_t)pg);
  if (p == MAP_FAILED) SYSFAIL("mmap 0x%" PRIx64 "+0x%" PRIx64, pg, span);
  if (write) {
    fill(buf, len);
    memcpy(p + (off - pg), buf, len);
    memcpy(good + off, buf, len);
    if (below(2) && msync(p, span, MS_SYNC) < 0) SYSFAIL("msync");
  } else {
    check(p + (off - pg), off, len, "mmap read");
  }
  if (munmap(p, span) < 0) SYSFAIL("munmap");
}

/* fallocate; 0 when done, 1 when the filesystem does not support it (the op is switched off). */
static int falloc(int op, int mode, uint64_t off, uint64_t len) {
  if (fallocate(fd, mode, (off_t)off, (off_t)len) == 0) return 0;
  if (errno == EOPNOTSUPP) {
    if (!disabled[op]) fprintf(stderr, "fsx: %s not supported here: switched off\n", op_names[op]);
    disabled[op] = 1; weight[op] = 0;
    return 1;
  }
  SYSFAIL("fallocate %s 0x%" PRIx64 "+0x%" PRIx64, op_names[op], off, len);
  return 1;
}

static uint64_t align_down(uint64_t v, uint64_t a) { return v - v % a; }

/* Picks an operation by weight, then its range, and does it. */
static void step(void) {
  unsigned total = 0;
  for (int i = 0; i < OP_COUNT; i++) total += weight[i];
  unsigned w = (unsigned)below(total);
  int op = 0;
  while (w >= weight[op]) w -= weight[op++];
  uint64_t off = below(maxlen), len = 1 + below(maxoplen);
  if (off + len > maxlen) len = maxlen - off;
  if (op == OP_DREAD || op == OP_DWRITE) {
    off = align_down(off, blksz); len = align_down(len, blksz);
    if (len == 0) len = blksz;
    if (off + len > maxlen) off = maxlen - len;
    if (op == OP_DREAD) {
      if (file_size < blksz) op = OP_READ;
      else { uint64_t end = align_down(file_size, blksz); if (off >= end) off = end - blksz; if (off + len > end) len = end - off; }
    }
  }
  if (op == OP_READ || op == OP_MAPREAD || op == OP_PUNCH || op == OP_ZERO_KEEP || op == OP_FALLOC_KEEP) {
    if (op != OP_FALLOC_KEEP || below(2)) { /* keep-size fallocate may also reach past the end */
      if (file_size == 0) { op = OP_WRITE; }
      else { off = below(file_size); if (off + len > file_size) len = file_size - off; }
    }
  }
  if (op == OP_COLLAPSE) {
    /* block-aligned, at least one block, ending before EOF */
    uint64_t blocks = file_size / blksz;
    if (blocks < 2) op = OP_TRUNCATE;
    else {
      uint64_t ob = below(blocks - 1), maxlb = (file_size - 1) / blksz - ob, oplb = maxoplen / blksz;
      off = ob * blksz;
      len = blksz * (1 + below(maxlb < oplb ? maxlb : oplb ? oplb : 1));
    }
  }
  if (op == OP_INSERT) {
    /* block-aligned, starting before EOF, the file staying within maxlen */
    uint64_t roomb = (maxlen - file_size) / blksz, oplb = maxoplen / blksz;
    if (file_size == 0 || roomb == 0) op = OP_TRUNCATE;
    else {
      off = blksz * below((file_size + blksz - 1) / blksz);
      len = blksz * (1 + below(roomb < oplb ? roomb : oplb ? oplb : 1));
    }
  }
  if (op == OP_TRUNCATE) { off = below(maxlen + 1); len = 0; }
  log_op(op, off, len);
  counts[op]++;
  switch (op) {
  case OP_READ:
    full_read(fd, buf, off, len, "read");
    check(buf, off, len, "read");
    break;
  case OP_WRITE:
    fill(buf, len);
    full_write(fd, buf, off, len, "write");
    memcpy(good + off, buf, len);
    if (off + len > file_size) file_size = off + len;
    check_size("write");
    break;
  case OP_MAPREAD: do_mmap(0, off, len); break;
  case OP_MAPWRITE: do_mmap(1, off, len); check_size("mapwrite"); break;
  case OP_TRUNCATE:
    if (ftruncate(fd, (off_t)off) < 0) SYSFAIL("ftruncate to 0x%" PRIx64, off);
    set_size(off);
    check_size("truncate");
    break;
  case OP_FALLOC_KEEP:
    if (!falloc(op, FALLOC_FL_KEEP_SIZE, off, len)) check_size("fallocate keep-size");
    break;
  case OP_FALLOC_EXTEND:
    if (!falloc(op, 0, off, len) && off + len > file_size) set_size(off + len);
    check_size("fallocate");
    break;
  case OP_PUNCH:
    if (!falloc(op, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len)) memset(good + off, 0, len);
    check_size("punch hole");
    break;
  case OP_ZERO_KEEP:
  case OP_ZERO_EXTEND: {
    int keep = op == OP_ZERO_KEEP;
    if (!falloc(op, FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0), off, len)) {
      uint64_t end = off + len;
      if (keep && end > file_size) end = file_size;
      if (end > off) memset(good + off, 0, end - off);
      if (!keep && off + len > file_size) file_size = off + len;
    }
    check_size("zero range");
    break;
  }
  case OP_COLLAPSE:
    if (!falloc(op, FALLOC_FL_COLLAPSE_RANGE, off, len)) {
      memmove(good + off, good + off + len, file_size - off - len);
      set_size(file_size - len);
    }
    check_size("collapse range");
    break;
  case OP_INSERT:
    if (!falloc(op, FALLOC_FL_INSERT_RANGE, off, len)) {
      memmove(good + off + len, good + off, file_size - off);
      memset(good + off, 0, len);
      file_size += len;
    }
    check_size("insert range");
    break;
  case OP_FSYNC: if (fsync(fd) < 0) SYSFAIL("fsync"); break;
  case OP_FDATASYNC: if (fdatasync(fd) < 0) SYSFAIL("fdatasync"); break;
  case OP_REOPEN: close_file(); open_file(0); check_size("reopen"); break;
  case OP_DREAD:
    full_read(dfd, dbuf, off, len, "O_DIRECT read");
    check(dbuf, off, len, "O_DIRECT read");
    break;
  case OP_DWRITE:
    fill(dbuf, len);
    full_write(dfd, dbuf, off, len, "O_DIRECT write");
    memcpy(good + off, dbuf, len);
    if (off + len > file_size) file_size = off + len;
    check_size("O_DIRECT write");
    break;
  }
}

/* Reads the whole file through fd `f` and compares it with the model. */
static void verify_all(int f, const char *how) {
  struct stat st;
  if (fstat(f, &st) < 0) SYSFAIL("fstat %s", path);
  if ((uint64_t)st.st_size != file_size)
    die(1, -1, "%s: file size is 0x%" PRIx64 ", expected 0x%" PRIx64, how, (uint64_t)st.st_size, file_size);
  unsigned char *all = malloc(file_size + 1);
  if (!all) die(2, -1, "out of memory");
  full_read(f, all, 0, file_size, how);
  check(all, 0, file_size, how);
  free(all);
}

static int compare_only(const char *model) {
  FILE *m = fopen(model, "rb");
  if (!m) { perror(model); return 2; }
  fseek(m, 0, SEEK_END);
  file_size = (uint64_t)ftell(m);
  rewind(m);
  good = malloc(file_size + 1);
  if (!good || fread(good, 1, file_size, m) != file_size) { fprintf(stderr, "fsx: cannot read model %s\n", model); return 2; }
  fclose(m);
  fd = open(path, O_RDONLY);
  if (fd < 0) SYSFAIL("open %s", path);
  verify_all(fd, "verify against saved model");
  printf("fsx: %s matches %s (%" PRIu64 " bytes)\n", path, model, file_size);
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: fsx [-N ops] [-S seed] [-l maxlen] [-o maxoplen] [-W model] [-x mfcr] [-D] [-q] FILE\n"
                  "       fsx -c MODEL FILE\n");
  exit(2);
}

int main(int argc, char **argv) {
  unsigned long nops = 10000;
  uint64_t seed = 0;
  int have_seed = 0, opt;
  const char *save = NULL, *compare = NULL, *leave_out = "";
  while ((opt = getopt(argc, argv, "N:S:l:o:W:c:x:Dq")) != -1) {
    switch (opt) {
    case 'N': nops = strtoul(optarg, NULL, 0); break;
    case 'S': seed = strtoull(optarg, NULL, 0); have_seed = 1; break;
    case 'l': maxlen = strtoull(optarg, NULL, 0); break;
    case 'o': maxoplen = strtoull(optarg, NULL, 0); break;
    case 'W': save = optarg; break;
    case 'c': compare = optarg; break;
    case 'x': leave_out = optarg; break;
    case 'D': weight[OP_DREAD] = 3; weight[OP_DWRITE] = 3; break;
    case 'q': quiet = 1; break;
    default: usage();
    }
  }
  if (optind != argc - 1) usage();
  path = argv[optind];
  if (compare) return compare_only(compare);
  if (!have_seed) seed = (uint64_t)getpid() ^ (uint64_t)time(NULL);
  rng_state = seed;
  pagesz = (uint64_t)sysconf(_SC_PAGESIZE);
  if (strchr(leave_out, 'm')) weight[OP_MAPREAD] = weight[OP_MAPWRITE] = 0;
  if (strchr(leave_out, 'f'))
    weight[OP_FALLOC_KEEP] = weight[OP_FALLOC_EXTEND] = weight[OP_PUNCH] = weight[OP_ZERO_KEEP] = weight[OP_ZERO_EXTEND] = 0;
  if (strchr(leave_out, 'f') || strchr(leave_out, 'c')) weight[OP_COLLAPSE] = weight[OP_INSERT] = 0;
  if (strchr(leave_out, 'r')) weight[OP_REOPEN] = 0;
  if (maxoplen > maxlen) maxoplen = maxlen;
  good = calloc(1, maxlen + maxoplen);
  buf = malloc(maxoplen + 1);
  if (!good || !buf || posix_memalign((void **)&dbuf, 4096, maxoplen + 4096)) die(2, -1, "out of memory");
  printf("fsx: seed %" PRIu64 ", %lu ops, file %s, max size 0x%" PRIx64 ", max op 0x%" PRIx64 "\n", seed, nops, path, maxlen, maxoplen);
  fflush(stdout);
  open_file(O_CREAT | O_TRUNC);
  struct statvfs sv;
  if (fstatvfs(fd, &sv) == 0 && sv.f_bsize > blksz) blksz = sv.f_bsize;
  if (maxlen < 2 * blksz) die(2, -1, "max size must be at least two blocks (%" PRIu64 ")", 2 * blksz);
  for (opnum = 0; opnum < nops; opnum++) {
    step();
    if (!quiet && opnum && opnum % 100000 == 0) { printf("fsx: %lu ops\n", opnum); fflush(stdout); }
  }
  opnum = nops ? nops - 1 : 0;
  verify_all(fd, "final read");
  if (fsync(fd) < 0) SYSFAIL("final fsync");
  close_file();
  fd = open(path, O_RDONLY);
  if (fd < 0) SYSFAIL("reopen %s", path);
  verify_all(fd, "final read after close");
  close(fd);
  if (save) {
    FILE *m = fopen(save, "wb");
    if (!m || fwrite(good, 1, file_size, m) != file_size || fclose(m) != 0) SYSFAIL("write model %s", save);
  }
  printf("fsx: PASSED seed %" PRIu64 " ops %lu final size %" PRIu64 "\n", seed, nops, file_size);
  for (int i = 0; i < OP_COUNT; i++)
    printf("fsx-count %s %lu%s\n", op_names[i], counts[i], disabled[i] ? " (unsupported: switched off)" : "");
  return 0;
}
