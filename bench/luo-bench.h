// What bench/luo-bench.c and bench/luo-bench-uv.c share: the uAPI (the
// build host's headers predate it), the size sweep's rules (bench/sweep.cjs
// has the same for the Node side), and the helpers both need.
#ifndef LUO_BENCH_H
#define LUO_BENCH_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

// include/uapi/linux/liveupdate.h (7.2+).
#define LIVEUPDATE_IOCTL_CREATE_SESSION _IO(0xBA, 0x00)
#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION _IO(0xBA, 0x01)
#define LIVEUPDATE_SESSION_PRESERVE_FD _IO(0xBA, 0x40)
#define LIVEUPDATE_SESSION_RETRIEVE_FD _IO(0xBA, 0x41)
#define LIVEUPDATE_SESSION_FINISH _IO(0xBA, 0x42)
#define LIVEUPDATE_SESSION_GET_NAME _IO(0xBA, 0x43)

struct session_args { uint32_t size; int32_t fd; char name[64]; };
struct fd_args { uint32_t size; int32_t fd; uint64_t token __attribute__((aligned(8))); };
struct finish_args { uint32_t size; uint32_t reserved; };
struct name_args { uint32_t size; uint32_t reserved; char name[64]; };

static void die(const char *what) {
  fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
  exit(1);
}

static int session(int dev, unsigned long request, const char *name) {
  struct session_args a = {.size = sizeof a};
  snprintf(a.name, sizeof a.name, "%s", name);
  if (ioctl(dev, request, &a) < 0) die(name);
  return a.fd;
}

static int open_device(void) {
  int dev = open("/dev/liveupdate", O_RDWR | O_CLOEXEC);
  if (dev < 0) die("/dev/liveupdate");
  return dev;
}

// As bench/sweep.cjs's filesFor: about 16 MiB of files per size, 1 to 16.
static long files_for(long size) {
  long n = (16L << 20) / size;
  return n < 1 ? 1 : n > 16 ? 16 : n;
}

// As bench/sweep.cjs's WINDOWS and windowsFor: the loop-delay windows per
// size (one from 1 GiB up), each preserving fresh memfds, or after the
// kexec retrieving a session of its own, named as windowSession() there
// names it.
enum { WINDOWS = 3 };
static int windows_for(long size) {
  return size < (1L << 30) ? WINDOWS : 1;
}
static void window_session(char *name, size_t len, const char *prefix, long size, int w) {
  if (w == 0) snprintf(name, len, "%s-%ld", prefix, size);
  else snprintf(name, len, "%s-%ld-w%d", prefix, size, w);
}

// Byte k of file i is (i + k) & 0xff: file i is pattern + (i & 0xff).
static unsigned char *make_pattern(long size) {
  unsigned char *p = malloc(size + 256);
  if (!p) die("malloc");
  for (long k = 0; k < 256; k++) p[k] = (unsigned char)k;
  // Doubling copies: a byte loop over hundreds of MiB is slow under emulation.
  for (long have = 256; have < size + 256; have *= 2)
    memcpy(p + have, p, (have * 2 <= size + 256 ? have : size + 256 - have));
  return p;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

// The middle of n values (the upper middle of an even count), as
// node-pass.cjs's median; sorts them in place.
static uint64_t median_u64(uint64_t *v, int n) {
  qsort(v, n, sizeof *v, cmp_u64);
  return v[n / 2];
}

// A loop-delay sample: the windows' median time, their worst gap, each gap.
static void report_eld(const char *impl, const char *op, long n, uint64_t ns, long size, const double *eld, int windows) {
  double max = 0;
  for (int w = 0; w < windows; w++) if (eld[w] > max) max = eld[w];
  printf("{\"impl\":\"%s\",\"op\":\"%s\",\"n\":%ld,\"ns\":%llu,\"size\":%ld,\"eldMaxMs\":%.3f,\"eldRunsMs\":[", impl, op, n, (unsigned long long)ns, size, max);
  for (int w = 0; w < windows; w++) printf("%s%.3f", w ? "," : "", eld[w]);
  printf("]}\n");
  fflush(stdout);
}
#endif
