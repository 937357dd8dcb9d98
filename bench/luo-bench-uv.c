// The C reference for the loop-delay figures of the Promise forms: the
// same calls as node-pass.cjs's one-at-a-time windows, made the way the
// library's Promise forms make them but with no V8. Each ioctl runs on
// libuv's pool (uv_queue_work) and the next one starts from the previous
// one's completion callback, while a 1 ms repeating uv_timer on the loop
// records the longest gap between two of its runs, as
// monitorEventLoopDelay({ resolution: 1 }) does. So where bench/luo-bench.c's
// ticker shows the kernel's share, this shows what libuv's loop-and-pool
// shape itself costs on the same CPU; a Node figure above it is V8's and
// the library's.
// Prints one JSON line per size: {"impl":"c-uv","op":…,"eldMaxMs":…}.
// Built by bench/run.mjs with gcc -O2 -static against Debian's libuv1-dev.
//
//   luo-bench-uv sweep-preserve SIZES        stage 1: preserve written memfds, 3 windows per size
//   luo-bench-uv sweep-restore PREFIX SIZES  after the kexec: retrieve a session (3 per size), its files, finish
#include "luo-bench.h"  // first: it defines _GNU_SOURCE

#include <sys/mman.h>
#include <uv.h>

enum { SETTLE_MS = 200, LEAD_MS = 3, TAIL_MS = 2 };  // as withLoopDelay

// What one window does: `calls` ioctls, call i being step(w, i) on a pool
// thread. Everything the loop needs lives here (no globals): the handles
// carry a pointer back to it.
struct window {
  uv_loop_t *loop;
  uv_timer_t ticker, timer;
  uv_work_t work;
  long calls, next;
  int failed;
  int (*step)(struct window *w, long i);  // returns 0 or an errno
  const char *failed_call;  // what step() was doing when it failed
  // The calls' state: the device or session fd, the files, the session made.
  int dev, session;
  const char *name;
  int *fds;
  // The measurement.
  uint64_t last, max_gap, start, end;
};

static void on_tick(uv_timer_t *t) {
  struct window *w = t->data;
  uint64_t now = uv_hrtime();
  // The first run only starts the count, as the histogram's does.
  if (w->last && now - w->last > w->max_gap) w->max_gap = now - w->last;
  w->last = now;
}

static void run_call(uv_work_t *req) {
  struct window *w = req->data;
  int err = w->step(w, w->next);
  if (err) w->failed = err;
}

static void stop(uv_timer_t *t) {
  struct window *w = t->data;
  uv_timer_stop(&w->ticker);
}

static void after_call(uv_work_t *req, int status);

static void queue_call(struct window *w) {
  int err = uv_queue_work(w->loop, &w->work, run_call, after_call);
  if (err) {
    errno = -err;
    die("uv_queue_work");
  }
}

static void after_call(uv_work_t *req, int status) {
  struct window *w = req->data;
  if (status || w->failed) {
    errno = w->failed ? w->failed : -status;
    die(w->failed ? w->failed_call : "uv_queue_work");
  }
  if (++w->next < w->calls) {
    queue_call(w);
    return;
  }
  w->end = uv_hrtime();
  uv_timer_start(&w->timer, stop, TAIL_MS, 0);
}

static void open_window(uv_timer_t *t) {
  struct window *w = t->data;
  w->start = uv_hrtime();
  w->next = 0;
  queue_call(w);
}

static void lead_in(uv_timer_t *t) {
  struct window *w = t->data;
  uv_timer_start(&w->ticker, on_tick, 1, 1);
  uv_timer_start(&w->timer, open_window, LEAD_MS, 0);
}

// Runs one window on a fresh loop: settle, start the ticker, lead-in,
// the calls one at a time, tail. Returns the longest gap in ms.
static double run_window(struct window *w) {
  uv_loop_t loop;
  if (uv_loop_init(&loop)) die("uv_loop_init");
  w->loop = &loop;
  w->last = w->max_gap = 0;
  w->failed = 0;
  uv_timer_init(&loop, &w->ticker);
  uv_timer_init(&loop, &w->timer);
  w->ticker.data = w->timer.data = w->work.data = w;
  uv_timer_start(&w->timer, lead_in, SETTLE_MS, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&w->ticker, NULL);
  uv_close((uv_handle_t *)&w->timer, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  int err = uv_loop_close(&loop);
  if (err) {
    errno = -err;
    die("uv_loop_close");
  }
  return w->max_gap / 1e6;
}

// The device opened on the pool, as LiveUpdate.open() does in the Node
// sweeps: a process whose ioctls go to the pool sets up that way too, and
// libuv's pool (started on first use) is then running before the first
// window, as in any process that has done asynchronous work before.
static void open_on_pool(uv_work_t *req) {
  *(int *)req->data = open_device();
}

static int open_device_on_pool(void) {
  uv_loop_t loop;
  uv_work_t req;
  int dev = -1;
  if (uv_loop_init(&loop)) die("uv_loop_init");
  req.data = &dev;
  int err = uv_queue_work(&loop, &req, open_on_pool, NULL);
  if (err) {
    errno = -err;
    die("uv_queue_work");
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err) {
    errno = -err;
    die("uv_loop_close");
  }
  return dev;
}

static int preserve_step(struct window *w, long i) {
  struct fd_args a = {.size = sizeof a, .fd = w->fds[i], .token = (uint64_t)i + 1};
  w->failed_call = "PRESERVE_FD";
  return ioctl(w->session, LIVEUPDATE_SESSION_PRESERVE_FD, &a) < 0 ? errno : 0;
}

// One preserve window: files_for(size) memfds written with the bench's
// pattern, a throwaway session made, both before the window opens.
static void preserve_window(int dev, long size, const unsigned char *pattern, const char *tag, uint64_t *ns, double *eld) {
  long count = files_for(size);
  struct window w = {.calls = count, .step = preserve_step, .dev = dev};
  w.fds = calloc(count, sizeof *w.fds);
  if (!w.fds) die("calloc");
  for (long i = 0; i < count; i++) {
    if ((w.fds[i] = memfd_create("bench", MFD_CLOEXEC)) < 0) die("memfd_create");
    if (pwrite(w.fds[i], pattern + (i & 0xff), size, 0) != size) die("pwrite");
  }
  char name[64];
  snprintf(name, sizeof name, "bsp-cuv-%s-%ld", tag, size);
  w.session = session(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, name);
  *eld = run_window(&w);
  *ns = w.end - w.start;
  close(w.session);
  for (long i = 0; i < count; i++) close(w.fds[i]);
  free(w.fds);
}

// As luo-bench.c's sweep_preserve: one window at the first size (reported
// apart, as the process's first), then windows_for(size) per size,
// reported as the median time and the worst gap.
static void sweep_preserve(char *sizes) {
  int dev = open_device_on_pool();
  uint64_t ns[WINDOWS];
  double eld[WINDOWS];
  long first = atol(sizes);
  unsigned char *pattern = make_pattern(first);
  // The first window: the process's first preserves, with the code cold
  // (for C, nothing to speak of) and the pool started by the open.
  preserve_window(dev, first, pattern, "warm", &ns[0], &eld[0]);
  report_eld("c-uv", "sweep-preserve-first", files_for(first), ns[0], first, eld, 1);
  free(pattern);
  for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
    long size = atol(tok);
    int windows = windows_for(size);
    pattern = make_pattern(size);
    for (int k = 0; k < windows; k++) {
      char tag[16];
      snprintf(tag, sizeof tag, "t%d", k);
      preserve_window(dev, size, pattern, tag, &ns[k], &eld[k]);
    }
    report_eld("c-uv", "sweep-preserve", files_for(size), median_u64(ns, windows), size, eld, windows);
    free(pattern);
  }
  close(dev);
}

// Call 0 retrieves the session, calls 1..count its files, the last finishes.
static int restore_step(struct window *w, long i) {
  if (i == 0) {
    w->failed_call = "RETRIEVE_SESSION";
    struct session_args s = {.size = sizeof s};
    snprintf(s.name, sizeof s.name, "%s", w->name);
    if (ioctl(w->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &s) < 0) return errno;
    w->session = s.fd;
  } else if (i < w->calls - 1) {
    w->failed_call = "RETRIEVE_FD";
    struct fd_args a = {.size = sizeof a, .token = (uint64_t)i};
    if (ioctl(w->session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) < 0) return errno;
    w->fds[i - 1] = a.fd;
  } else {
    w->failed_call = "FINISH";
    struct finish_args f = {.size = sizeof f};
    if (ioctl(w->session, LIVEUPDATE_SESSION_FINISH, &f) < 0) return errno;
  }
  return 0;
}

// Session NAME holds files_for(size) files (bench/guest.cjs made it). The
// files are not read back: luo-bench.c's restore rows verify the data.
static double restore_window(int dev, const char *name, long size, uint64_t *ns) {
  long count = files_for(size);
  struct window w = {.calls = count + 2, .step = restore_step, .dev = dev, .name = name};
  w.fds = calloc(count, sizeof *w.fds);
  if (!w.fds) die("calloc");
  double eld = run_window(&w);
  *ns = w.end - w.start;
  for (long i = 0; i < count; i++) close(w.fds[i]);
  close(w.session);
  free(w.fds);
  return eld;
}

// Session PREFIX-warm (4 KiB files) first, reported apart as the other
// forms do, then windows_for(size) sessions per size, reported as the
// median time and the worst gap.
static void sweep_restore(const char *prefix, char *sizes) {
  int dev = open_device_on_pool();
  char name[64];
  uint64_t ns[WINDOWS];
  double eld[WINDOWS];
  snprintf(name, sizeof name, "%s-warm", prefix);
  eld[0] = restore_window(dev, name, 4096, &ns[0]);
  report_eld("c-uv", "sweep-retrieve-first", files_for(4096), ns[0], 4096, eld, 1);
  for (char *tok = strtok(sizes, ","); tok; tok = strtok(NULL, ",")) {
    long size = atol(tok);
    int windows = windows_for(size);
    for (int w = 0; w < windows; w++) {
      window_session(name, sizeof name, prefix, size, w);
      eld[w] = restore_window(dev, name, size, &ns[w]);
    }
    report_eld("c-uv", "sweep-retrieve", files_for(size), median_u64(ns, windows), size, eld, windows);
  }
  close(dev);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "sweep-preserve"))
    sweep_preserve(argv[2]);
  else if (argc == 4 && !strcmp(argv[1], "sweep-restore"))
    sweep_restore(argv[2], argv[3]);
  else {
    fprintf(stderr, "usage: luo-bench-uv sweep-preserve SIZES | sweep-restore PREFIX SIZES\n");
    return 2;
  }
  return 0;
}
