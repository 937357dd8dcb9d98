// What every property-based run checks, whatever it throws at the library:
// errors carry only documented codes, nothing escapes as an unhandled
// rejection, the process's fds come back to where they were, and a canary
// fd opened first is still the same file (so nothing closed a number twice).
import * as fs from 'node:fs';
import fc from 'fast-check';
import { defaultBinding } from '../../lib/binding';

/**
 * Every code a caller may see from the public API. The library's own:
 * argument checks (Node's codes), use after close, calls the state forbids,
 * socket conditions; then the errnos the kernel (or the stand-in device,
 * or the ledger device) answers, each documented per operation in
 * lib/errors.ts, and ENOENT from opening a kernel image that is not there.
 */
export const ALLOWED_CODES: ReadonlySet<string> = new Set([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_SESSION_CLOSED',
  'ERR_CLOSED',
  'ERR_INVALID_STATE',
  'ERR_SOCKET_CLOSED',
  'ERR_MESSAGE_TOO_LARGE',
  'ERR_FDS_TRUNCATED',
  // errnos
  'EBADF',
  'EBUSY',
  'EEXIST',
  'EINVAL',
  'ENOENT',
  'ENOTTY',
  'EPERM',
  'EPIPE',
  'ECONNRESET',
]);

/** Argument errors: thrown before any system call. */
export const ARGUMENT_CODES: ReadonlySet<string> = new Set(['ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE', 'ERR_OUT_OF_RANGE']);

export type Coded = Error & { code?: unknown };

/** Rethrows anything that is not an Error with an allowed code, so fast-check shrinks it. */
export function allowed(err: unknown, also: readonly string[] = []): string {
  const code = (err as Coded)?.code;
  if (err instanceof Error && typeof code === 'string' && (ALLOWED_CODES.has(code) || also.includes(code))) return code;
  throw new Error(`undocumented failure: ${err instanceof Error ? `${err.name} code=${String(code)}: ${err.message}` : String(err)}`, { cause: err });
}

/** The open fds of this process, number to what they are. */
export function fdTable(): Map<number, string> {
  const table = new Map<number, string>();
  for (const n of fs.readdirSync('/proc/self/fd')) {
    try {
      table.set(Number(n), fs.readlinkSync(`/proc/self/fd/${n}`));
    } catch {
      // the directory's own fd, gone by now
    }
  }
  return table;
}

/** Fails with the difference when the fd table is not what it was. */
export function expectFdTable(baseline: Map<number, string>, when: string): void {
  const now = fdTable();
  const opened = [...now].filter(([n, what]) => baseline.get(n) !== what).map(([n, what]) => `${n} -> ${what}`);
  const closed = [...baseline].filter(([n, what]) => now.get(n) !== what).map(([n, what]) => `${n} -> ${what}`);
  if (opened.length || closed.length) {
    throw new Error(`fds changed ${when}: opened [${opened.join(', ')}], lost [${closed.join(', ')}]`);
  }
}

/**
 * A memfd with known contents, opened before the run: a double close
 * anywhere would sooner or later close its number, or hand the number to
 * another file. Checked by device and inode, and by contents.
 */
export class Canary {
  readonly fd: number;
  readonly #ino: number;
  readonly #dev: number;
  static readonly TEXT = 'canary: still the same file';

  constructor() {
    this.fd = defaultBinding().memfdCreateSync('fuzz-canary', 0);
    fs.writeSync(this.fd, Canary.TEXT, 0);
    const st = fs.fstatSync(this.fd);
    this.#ino = st.ino;
    this.#dev = st.dev;
  }

  check(when: string): void {
    let st: fs.Stats;
    try {
      st = fs.fstatSync(this.fd);
    } catch (err) {
      throw new Error(`the canary fd ${this.fd} was closed ${when}`, { cause: err });
    }
    const buf = Buffer.alloc(Canary.TEXT.length);
    fs.readSync(this.fd, buf, 0, buf.length, 0);
    if (st.ino !== this.#ino || st.dev !== this.#dev || buf.toString() !== Canary.TEXT) {
      throw new Error(`the canary fd ${this.fd} is another file ${when}: something closed it and its number was reused`);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Collects unhandled rejections and uncaught exceptions while a property runs. */
export function watchForCrashes() {
  const seen: unknown[] = [];
  const onRejection = (reason: unknown) => seen.push(reason);
  const onException = (err: unknown) => seen.push(err);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    check(when: string) {
      if (seen.length > 0) throw new Error(`${seen.length} unhandled rejection(s) or exception(s) ${when}: ${String((seen[0] as Error)?.stack ?? seen[0])}`);
    },
    stop() {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}

/**
 * fast-check's parameters: a seed from FUZZ_SEED to replay a failure (the
 * failure message prints the seed and the shrunk path), else a fresh one,
 * printed with the summary so a passing run can be replayed too. FUZZ_RUNS
 * scales the number of runs; FUZZ_NO_SHRINK reports the first failure as is.
 */
export function fuzzParameters(numRuns: number): fc.Parameters<unknown> & { seed: number } {
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  const runs = process.env.FUZZ_RUNS !== undefined ? Math.max(1, Math.round(numRuns * Number(process.env.FUZZ_RUNS))) : numRuns;
  return { seed, numRuns: runs, verbose: 0, endOnFailure: process.env.FUZZ_NO_SHRINK !== undefined };
}

/** Counts calls into the library per property; printed as one summary line each. */
export class CallCount {
  static readonly all = new Map<string, number>();
  n = 0;
  constructor(readonly property: string) {}
  add(k = 1): void {
    this.n += k;
  }
  report(seed: number, extra = ''): void {
    CallCount.all.set(this.property, this.n);
    console.log(`fuzz: ${this.property}: ${this.n} calls (seed ${seed})${extra ? `; ${extra}` : ''}`);
  }
}

/** Lets pending I/O and worker callbacks run. */
export const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
