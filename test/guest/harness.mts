// A minimal test runner for the guest, where vitest is too heavy under
// emulation: runs one stage's cases in order and records each result as a
// JSON line in $LIVEUPDATE_VM_OUT/results.jsonl, which the host reads back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

export interface GuestCase<C> {
  name: string;
  /** What the case resolves with (other than undefined) is recorded as `detail`, for the host to check. */
  fn: (context: C) => unknown;
}

/** One line of results.jsonl. */
export interface GuestResult {
  stage: number;
  name: string;
  ms: number;
  ok: boolean;
  error?: string;
  code?: string;
  /** What the case returned: counts and seeds the host-side test asserts on. */
  detail?: unknown;
}

export function createSuite<C>() {
  const stages = new Map<number, GuestCase<C>[]>();
  const add = (stage: number) => (name: string, fn: (context: C) => unknown) => {
    if (!stages.has(stage)) stages.set(stage, []);
    stages.get(stage)!.push({ name, fn });
  };
  return { stage1: add(1), stage2: add(2), stages };
}

export async function runStage<C>(cases: GuestCase<C>[], stage: number, outDir: string, context: C): Promise<number> {
  const file = path.join(outDir, 'results.jsonl');
  let failed = 0;
  for (const { name, fn } of cases) {
    const started = performance.now();
    let outcome: Pick<GuestResult, 'ok' | 'error' | 'code' | 'detail'>;
    try {
      const detail = await fn(context);
      outcome = detail === undefined ? { ok: true } : { ok: true, detail };
    } catch (err) {
      failed++;
      const e = err as { stack?: string; code?: string };
      outcome = { ok: false, error: e?.stack ?? String(err), code: e?.code };
    }
    const ms = Math.round(performance.now() - started);
    const result: GuestResult = { stage, name, ms, ...outcome };
    fs.appendFileSync(file, `${JSON.stringify(result)}\n`);
    console.log(`${outcome.ok ? 'ok' : 'not ok'} - stage ${stage}: ${name} (${ms} ms)${outcome.ok ? '' : `\n${outcome.error}`}`);
  }
  return failed;
}
