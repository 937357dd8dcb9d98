// The C reference for `npm run bench`: the same operation sequences the
// Node side runs, as plain ioctls on /dev/liveupdate, timed the same way
// (CLOCK_MONOTONIC around the loop only; setup and teardown untimed).
// Prints one JSON line per operation: {"impl":"c","op":…,"n":…,"ns":…}.
// Built by bench/run.mjs with gcc -O2 -static on the host; the guest runs
// the host's root over 9p, so the binary runs there as is.
//
//   luo-bench stage1 SESSIONS FILES GETNAMES FLOOR   the in-kernel rows
//   luo-bench retrieve SESSION FILES [WARM WARMFILES] after the kexec: retrieve + finish
//   luo-bench restore SESSION FILES BYTES            after the kexec: retrieve, read, verify, finish
//   luo-bench sweep-preserve SIZES                   size sweep: preserve written memfds (SIZES: bytes, comma-separated)
//   luo-bench sweep-restore PREFIX SIZES             size sweep after the kexec: session PREFIX-SIZE
#include "luo-bench.h"  // first: it defines _GNU_SOURCE

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

// Before each stage-1 loop: a pause in which the kernel's deferred work
// from what ran before (files freed after RCU grace periods, kworkers) can
// finish, instead of landing in whichever loop runs next on the one vCPU.
// The Node and Python sides pause the same way (SETTLE_MS).
static void settle(void) { usleep(200 * 1000); }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(const char *op, long n, uint64_t ns) {
  printf("{\"impl\":\"c\",\"op\":\"%s\",\"n\":%ld,\"ns\":%llu}\n", op, n, (unsigned long long)ns);
  fflush(stdout);
}

static void stage1(long sessions, long files, long getnames, long floor) {
  int dev = open_device();
  char name[64];

  settle();
  uint64_t t = now_ns();
  for (long i = 0; i < sessions; i++) {
    snprintf(name, sizeof name, "bench-c-%ld", i);
    close(session(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, name));
  }
  report("create-close", sessions, now_ns() - t);

  int s = session(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, "bench-c-preserve");
  int *fds = calloc(files, sizeof *fds);
  for (long i = 0; i < files; i++)
    if ((fds[i] = memfd_create("bench", MFD_CLOEXEC)) < 0) die("memfd_create");
  settle();
  t = now_ns();
  for (long i = 0; i < files; i++) {
    struct fd_args a = {.size = sizeof a, .fd = fds[i], .token = (uint64_t)i + 1};
    if (ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0) die("PRESERVE_FD");
  }
  report("preserve", files, now_ns() - t);
  settle();
  t = now_ns();
  for (long i = 0; i < getnames; i++) {
    struct name_args a = {.size = sizeof a};
    if (ioctl(s, LIVEUPDATE_SESSION_GET_NAME, &a) < 0) die("GET_NAME");
  }
  report("get-name", getnames, now_ns() - t);
  for (long i = 0; i < files; i++) close(fds[i]);
  free(fds);
  close(s);

  struct stat st;
  settle();
  t = now_ns();
  for (long i = 0; i < floor; i++)
    if (fstat(dev, &st) < 0) die("fstat");
  report("fstat", floor, now_ns() - t);
  settle();
  t = now_ns();
  for (long i = 0; i < floor; i++) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("/dev/null");
    close(fd);
  }
  report("open-close", floor, now_ns() - t);
  close(dev);
}

// Stage 2: retrieve every file of a session preserved by the previous
// kernel, then finish it; with BYTES, also read each back and check the
// pattern stage 1 wrote (byte k of file i is (i + k) & 0xff), against a
// pattern built before the clock starts, as the Node side does. Returns
// the session fd, still open.
static int restore_all(int dev, const char *name, long files, long bytes, unsigned char *buf, const unsigned char *pattern) {
  int s = session(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
  for (long i = 0; i < files; i++) {
    struct fd_args a = {.size = sizeof a, .token = (uint64_t)i + 1};
    if (ioctl(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0) die("RETRIEVE_FD");
    if (bytes) {
      if (pread(a.fd, buf, bytes, 0) != bytes) die("pread");
      if (memcmp(buf, pattern + (i & 0xff), bytes)) { fprintf(stderr, "luo-bench: file %ld differs\n", i); exit(1); }
    }
    close(a.fd);
  }
  struct finish_args f = {.size = sizeof f};
  if (ioctl(s, LIVEUPDATE_SESSION_FINISH, &f) < 0) die("FINISH");
  return s;
}

// WARM (or NULL): a session of WARMFILES empty memfds, then WARM-2 of FILES,
// restored untimed first, as the Node side warms its code (it needs the
// second: see bench/node-pass.cjs); the figure is then of warm caches.
static void retrieve(const char *op, const char *name, long files, long bytes, const char *warm, long warm_files) {
  int dev = open_device();
  unsigned char *buf = bytes ? malloc(bytes) : NULL;
  unsigned char *pattern = bytes ? malloc(bytes + 256) : NULL;
  for (long k = 0; bytes && k < bytes + 256; k++) pattern[k] = (unsigned char)k;
  if (warm) {
    char again[128];
    snprintf(again, sizeof again, "%s-2", warm);
    close(restore_all(dev, warm, warm_files, bytes, buf, pattern));
    close(restore_all(dev, again, files, bytes, buf, pattern));
    settle();
  }
  uint64_t t = now_ns();
  int s = restore_all(dev, name, files, bytes, buf, pattern);
  report(op, files, now_ns() - t);
  // From the parent's spawn (BENCH_SPAWN_NS, CLOCK_MONOTONIC) to here: the
  // same figure the Node side reports, exec included.
  const char *spawn = getenv("BENCH_SPAWN_NS");
  if (bytes && spawn) report("restore-from-start", 1, now_ns() - strtoull(spawn, NULL, 10));
  close(s);
  if (warm) {
    // The floor in this boot, as the Node side measures it: as many
    // fstat calls untimed as the warm-up made, then as many as the row.
    struct stat st;
    for (long i = 0; i < 2 * (warm_files + files); i++) fstat(dev, &st);
    settle();
    uint64_t f = now_ns();
    for (long i = 0; i < 2 * files; i++) fstat(dev, &st);
    report("fstat", 2 * files, now_ns() - f);
  }
  close(dev);
}

// The size sweep's rules, as in bench/sweep.cjs: enough files of each size
// to add up to about 16 MiB, at most 16, at least one.
static void report_size(const char *op, long n, uint64_t ns, long size) {
  printf("{\"impl\":\"c\",\"op\":\"%s\",\"n\":%ld,\"ns\":%llu,\"size\":%ld}\n", op, n, (unsigned long long)ns, size);
  fflush(stdout);
}

// The C side of the loop-delay figures: while a window's calls run on the
// main thread, a second thread sleeps 1 ms at a time and records the
// longest gap between two of its wake-ups, as Node's
// monitorEventLoopDelay({ resolution: 1 }) does for the event loop while
// the library's Promise calls run on a libuv worker. On one CPU it shows
// how long the kernel work itself keeps a waiting thread from running,
// with no Node in the way.
struct ticker {
  pthread_t thread;
  atomic_int stop;
  atomic_int started;
  uint64_t max_gap;
};

static void *tick(void *arg) {
  struct ticker *t = arg;
  uint64_t prev = now_ns();
  atomic_store(&t->started, 1);
  while (!atomic_load(&t->stop)) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    uint64_t at = now_ns();
    if (at - prev > t->max_gap) t->max_gap = at - prev;
    prev = at;
  }
  return NULL;
}

// As node-pass.cjs's withLoopDelay: the ticker runs a few ms before the
// window and one tick after it, so a stall at either edge is recorded.
static void ticker_start(struct ticker *t) {
  memset(t, 0, sizeof *t);
  settle();
  if ((errno = pthread_create(&t->thread, NULL, tick, t))) die("pthread_create");
  while (!atomic_load(&t->started)) usleep(100);
  usleep(3000);
}

static double ticker_stop_ms(struct ticker *t) {
  usleep(2000);
  atomic_store(&t->stop, 1);
  pthread_join(t->thread, NULL);
  return t->max_gap / 1e6;
}

// One preserve window: COUNT fresh memfds of SIZE bytes, written, then
// preserved one by one into a throwaway session (bench/guest.cjs makes the
// ones stage 2 retrieves) while the ticker watches. Sets *ns and *eld.
static void preserve_window(int dev, long size, const unsigned char *pattern, const char *tag, uint64_t *ns, double *eld) {
  long count = files_for(size);
  int *fds = calloc(count, sizeof *fds);
  for (long i = 0; i < count; i++) {
    if ((fds[i] = memfd_create("bench", MFD_CLOEXEC)) < 0) die("memfd_create");
    if (pwrite(fds[i], pattern + (i & 0xff), size, 0) != size) die("pwrite");
  }
  char name[64];
  snprintf(name, sizeof name, "bsp-c-%s-%ld", tag, size);
  int s = session(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, name);
  struct ticker tk;
  ticker_start(&tk);
  uint64_t t = now_ns();
  for (long i = 0; i < count; i++) {
    struct fd_args a = {.size = sizeof a, .fd = fds[i], .token = (uint64_t)i + 1};
    if (ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0) die("PRESERVE_FD");
  }
  *ns = now_ns() - t;
  *eld = ticker_stop_ms(&tk);
  close(s);
  for (long i = 0; i < count; i++) close(fds[i]);
  free(fds);
}

// Stage 1 of the sweep. As node-pass.cjs's sweepPreserve: one window at
// the first size (reported apart, as the process's first), then
// windows_for(size) windows per size, reported as the median time and the
// worst gap.
static void sweep_preserve(char *sizes) {
  int dev = open_device();
  uint64_t ns[WINDOWS];
  double eld[WINDOWS];
  {
    long first = atol(sizes);
    unsigned char *pattern = make_pattern(first);
    preserve_window(dev, first, pattern, "warm", &ns[0], &eld[0]);
    report_eld("c", "sweep-preserve-first", files_for(first), ns[0], first, eld, 1);
    free(pattern);
  }
  for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
    long size = atol(tok);
    int windows = windows_for(size);
    unsigned char *pattern = make_pattern(size);
    for (int w = 0; w < windows; w++) {
      char tag[16];
      snprintf(tag, sizeof tag, "t%d", w);
      preserve_window(dev, size, pattern, tag, &ns[w], &eld[w]);
    }
    report_eld("c", "sweep-preserve", files_for(size), median_u64(ns, windows), size, eld, windows);
    free(pattern);
  }
  close(dev);
}

// One restore window of the sweep after the kexec: session NAME holds
// files_for(size) files of the pattern. Retrieve all and finish, with the
// ticker watching (*retrieve_ns, *eld), then read back and compare
// (*restore_ns: retrieve + read back, as node-pass.cjs times it).
// PATTERN is make_pattern(size), made once per size, not per window.
static void restore_window(int dev, const char *name, long size, const unsigned char *pattern, uint64_t *retrieve_ns, uint64_t *restore_ns, double *eld) {
  long count = files_for(size);
  unsigned char *buf = malloc(size);
  int *fds = calloc(count, sizeof *fds);
  if (!buf || !fds) die("malloc");
  struct ticker tk;
  ticker_start(&tk);
  uint64_t t = now_ns();
  int s = session(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, name);
  for (long i = 0; i < count; i++) {
    struct fd_args a = {.size = sizeof a, .token = (uint64_t)i + 1};
    if (ioctl(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0) die("RETRIEVE_FD");
    fds[i] = a.fd;
  }
  struct finish_args f = {.size = sizeof f};
  if (ioctl(s, LIVEUPDATE_SESSION_FINISH, &f) < 0) die("FINISH");
  uint64_t retrieved = now_ns();
  *eld = ticker_stop_ms(&tk);
  uint64_t reading = now_ns();
  for (long i = 0; i < count; i++) {
    for (long off = 0; off < size;) {
      ssize_t got = pread(fds[i], buf + off, size - off, off);
      if (got <= 0) die("pread");
      off += got;
    }
    if (memcmp(buf, pattern + (i & 0xff), size)) { fprintf(stderr, "luo-bench: %s file %ld differs\n", name, i); exit(1); }
  }
  uint64_t done = now_ns();
  *retrieve_ns = retrieved - t;
  *restore_ns = retrieved - t + (done - reading);
  for (long i = 0; i < count; i++) close(fds[i]);
  close(s);
  free(fds);
  free(buf);
}

// Stage 2 of the sweep: session PREFIX-warm (4 KiB files) first, reported
// apart as the process's first window, as the Node forms do; then
// windows_for(size) sessions for each size, reported as the median times
// and the worst gap.
static void sweep_restore(const char *prefix, char *sizes) {
  int dev = open_device();
  char name[64];
  uint64_t retrieve_ns[WINDOWS], restore_ns[WINDOWS];
  double eld[WINDOWS];
  snprintf(name, sizeof name, "%s-warm", prefix);
  unsigned char *pattern = make_pattern(4096);
  restore_window(dev, name, 4096, pattern, &retrieve_ns[0], &restore_ns[0], &eld[0]);
  free(pattern);
  report_eld("c", "sweep-retrieve-first", files_for(4096), retrieve_ns[0], 4096, eld, 1);
  for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
    long size = atol(tok);
    int windows = windows_for(size);
    pattern = make_pattern(size);
    for (int w = 0; w < windows; w++) {
      window_session(name, sizeof name, prefix, size, w);
      restore_window(dev, name, size, pattern, &retrieve_ns[w], &restore_ns[w], &eld[w]);
    }
    free(pattern);
    report_eld("c", "sweep-retrieve", files_for(size), median_u64(retrieve_ns, windows), size, eld, windows);
    report_size("sweep-restore", files_for(size), median_u64(restore_ns, windows), size);
  }
  close(dev);
}

int main(int argc, char **argv) {
  if (argc == 6 && !strcmp(argv[1], "stage1"))
    stage1(atol(argv[2]), atol(argv[3]), atol(argv[4]), atol(argv[5]));
  else if ((argc == 4 || argc == 6) && !strcmp(argv[1], "retrieve"))
    retrieve("retrieve-finish", argv[2], atol(argv[3]), 0, argc == 6 ? argv[4] : NULL, argc == 6 ? atol(argv[5]) : 0);
  else if (argc == 5 && !strcmp(argv[1], "restore"))
    retrieve("restore-verify", argv[2], atol(argv[3]), atol(argv[4]), NULL, 0);
  else if (argc == 3 && !strcmp(argv[1], "sweep-preserve"))
    sweep_preserve(argv[2]);
  else if (argc == 4 && !strcmp(argv[1], "sweep-restore"))
    sweep_restore(argv[2], argv[3]);
  else {
    fprintf(stderr, "usage: luo-bench stage1 SESSIONS FILES GETNAMES FLOOR | retrieve SESSION FILES [WARM WARMFILES] | restore SESSION FILES BYTES"
                    " | sweep-preserve SIZES | sweep-restore PREFIX SIZES\n");
    return 2;
  }
  return 0;
}
