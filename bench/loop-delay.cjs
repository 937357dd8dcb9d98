// The event-loop delay window the bench's Promise rows are watched in
// (bench/node-pass.cjs's sweeps, bench/first-window.cjs): what
// monitorEventLoopDelay records while a run of calls goes, with the pause
// before it that keeps earlier work out of it.
'use strict';
const { monitorEventLoopDelay } = require('node:perf_hooks');

// The pause before every timed loop, as bench/luo-bench.c's settle().
const SETTLE_MS = 200;

const now = () => process.hrtime.bigint();

// The event loop's longest stall while `run` goes, in ms (`eld`): timers
// asked for every millisecond, so a loop that never stalls shows about 1 ms
// (the sampling interval itself is in the figure). `start` and `end` bound
// `run` itself (the settle before it is not timed).
async function withLoopDelay(run) {
  await settled();
  const h = monitorEventLoopDelay({ resolution: 1 });
  let start;
  let end;
  h.enable();
  try {
    // The histogram records the gap between two timer runs, so its first
    // run (which only starts the count) must come before `run` can stall
    // the loop; otherwise the first stall goes unrecorded (seen: a max of 0
    // over a concurrent preserve that took 16 ms).
    await new Promise((resolve) => setTimeout(resolve, 3));
    start = now();
    await run();
    end = now();
    // One more tick before looking: a stall is recorded only when the
    // timer next runs, and a run that stalled the loop throughout would
    // otherwise leave the histogram empty.
    await new Promise((resolve) => setTimeout(resolve, 2));
  } finally {
    h.disable();
  }
  return { eld: h.max / 1e6, start, end };
}

// Before a loop-delay window opens: V8 finishes the GC work that the setup
// set going, and the kernel its deferred work. Measured in the guest
// (--trace-gc): after a 256 MiB Buffer or 256 MiB written to a memfd, a
// Mark-Compact ("finalize incremental marking via task", 17–90 ms on the
// main thread) or an unexplained 25–35 ms stall came up to seconds later,
// landing in whichever window was open; withLoopDelay's 3 ms lead-in caught them
// and charged them to the call. With --expose-gc (bench/guest.cjs passes it
// to the sweep) a full collection runs here instead.
async function settled() {
  globalThis.gc?.();
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
}

module.exports = { SETTLE_MS, settled, withLoopDelay };
