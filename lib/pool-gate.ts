import { availableParallelism } from 'node:os';
import type { Binding } from './binding';

// Why the library's Promise calls take turns on libuv's pool (issue 8).
//
// A Promise call is queued to a pool thread, and queueing it wakes that
// thread. With no CPU to spare, the woken thread runs at once, on the CPU
// the event loop was using, until its call is done; so a burst of calls
// started in one go (Promise.all of 16 preserves) keeps the loop from
// running until the last of them has finished. Measured in the guest
// (1 vCPU, 16 memfds preserved all at once, the loop's longest stall in
// ms): 16–19 at 4 KiB and 23–27 at 1 MiB, about the whole burst; with at
// most one call on the pool at a time, 4–5 and 7–8, the burst taking no
// longer. Node core's own concurrent fs.read of the same files stalled
// the loop 9–20 and 80–107 ms.
//
// So no more calls go to the pool at once than there are CPUs; the rest
// wait here, in order, each holding what it holds (its dup of the caller's
// fd, its object's open fd) until it settles. Not one fewer: with 2 vCPUs
// (same burst, 5 windows) one call at a time stalled the loop no less than
// two (3–8 ms either way) but took twice as long (15–36 ms against 8–20),
// each call waiting out the previous one's round trip; on 1 vCPU two at a
// time stalled it a little more than one (5–15 against 5–12 ms). With 4
// CPUs or more (the pool's 4 threads) nothing is held back.
// sd_notify's send (systemd/notify.ts) stays out: it waits on the
// receiver, not for a CPU, and may wait long.

/** At most `limit` calls started by {@link PoolGate.run} are unsettled at once; the rest start in call order. */
export class PoolGate {
  #active = 0;
  // A FIFO with a moving head: shift() on an array is linear, and a burst
  // of thousands of calls would make draining it quadratic.
  #waiting: (() => void)[] = [];
  #head = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`PoolGate limit must be a positive integer, not ${limit}`);
  }

  /** Calls started and not yet settled. */
  get active(): number {
    return this.#active;
  }

  /** Calls waiting for a turn. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Starts `start` now if a turn is free, else when one is; settles as its promise does. */
  run<T>(start: () => Promise<T>): Promise<T> {
    if (this.#active < this.limit) return this.#start(start);
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => this.#start(start).then(resolve, reject));
    });
  }

  #start<T>(start: () => Promise<T>): Promise<T> {
    this.#active++;
    let started: Promise<T>;
    try {
      started = start();
    } catch (err) {
      // Released in a promise job like any other: releasing it here would
      // start the next waiter inside this one, and a queue of calls that
      // all throw (bad arguments) would recurse once per call.
      started = Promise.reject(err);
    }
    return started.finally(() => this.#done());
  }

  #done(): void {
    this.#active--;
    if (this.#head === this.#waiting.length) return;
    const next = this.#waiting[this.#head]!;
    this.#waiting[this.#head++] = undefined as never;
    if (this.#head === this.#waiting.length) {
      this.#waiting = [];
      this.#head = 0;
    }
    next();
  }
}

/** One call on the pool per CPU. */
export function defaultPoolLimit(cpus: number = availableParallelism()): number {
  return Math.max(1, cpus);
}

// One gate per binding: the addon's calls share libuv's one pool, and a
// test's fake binding gets a gate of its own.
const gates = new WeakMap<Binding, PoolGate>();

/** The gate the library's Promise calls on `binding` go through. @internal */
export function poolGate(binding: Binding): PoolGate {
  let gate = gates.get(binding);
  if (gate === undefined) {
    gate = new PoolGate(defaultPoolLimit());
    gates.set(binding, gate);
  }
  return gate;
}
