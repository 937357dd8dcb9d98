import { performance } from 'node:perf_hooks';
import { DEFAULT_DEVICE_PATH, LiveUpdate } from '../liveupdate';
import type { Session } from '../session';
import { deviceCases } from './device';
import { kexecPrograms } from './kexec';
import type { KexecProgram, SelftestResult } from './support';

export interface SelftestOptions {
  devicePath?: string;
  /** Called with each result as it is known. */
  onResult?: (result: SelftestResult) => void;
  /** Which parts to run; both by default. */
  only?: 'device' | 'kexec';
}

export interface Stage1Outcome {
  results: SelftestResult[];
  /** Sessions that must stay open through the kexec (the state sessions included). */
  held: Session[];
}

async function timed(name: string, stage: 0 | 1 | 2, fn: () => unknown, onResult?: (r: SelftestResult) => void): Promise<SelftestResult> {
  const started = performance.now();
  let result: SelftestResult;
  try {
    await fn();
    result = { name, stage, ok: true, ms: 0 };
  } catch (err) {
    result = { name, stage, ok: false, ms: 0, error: (err as Error)?.stack ?? String(err) };
  }
  result.ms = Math.round(performance.now() - started);
  onResult?.(result);
  return result;
}

export interface SelftestRun extends Stage1Outcome {
  stage: 1 | 2;
}

/**
 * Runs the stage the machine is in, decided as upstream's luo_test() does:
 * stage 2 when the previous kernel handed over a selftest state session.
 * With `expectStage`, a mismatch is an error (as upstream's `-s N`).
 */
export async function runSelftest(options: SelftestOptions & { expectStage?: 1 | 2 } = {}): Promise<SelftestRun> {
  const devicePath = options.devicePath ?? DEFAULT_DEVICE_PATH;
  const lu = LiveUpdate.openSync(devicePath);
  const states = new Map<KexecProgram, Session>();
  try {
    for (const p of kexecPrograms) {
      try {
        states.set(p, lu.retrieveSessionSync(p.state.session));
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
  } catch (err) {
    for (const s of states.values()) s.close();
    lu.close();
    throw err;
  }
  const stage = states.size > 0 ? 2 : 1;
  if (options.expectStage && options.expectStage !== stage) {
    for (const s of states.values()) s.close();
    lu.close();
    throw new Error(
      `stage ${options.expectStage} was requested, but this machine is in stage ${stage} (selftest state sessions ${stage === 2 ? 'were' : 'were not'} handed over by the previous kernel)`,
    );
  }
  if (stage === 1) {
    lu.close();
    return { stage, ...(await runStage1(options)) };
  }
  try {
    return { stage, results: await runStage2(lu, states, options), held: [] };
  } finally {
    lu.close();
  }
}

/** Stage 1: the 15 device cases, then each kexec program's pre-kexec half. */
async function runStage1(options: SelftestOptions): Promise<Stage1Outcome> {
  const devicePath = options.devicePath ?? DEFAULT_DEVICE_PATH;
  const results: SelftestResult[] = [];
  const held: Session[] = [];
  if (options.only !== 'kexec') {
    for (const c of deviceCases) results.push(await timed(c.name, 0, () => c.run(devicePath), options.onResult));
  }
  if (options.only !== 'device') {
    for (const p of kexecPrograms) {
      const run = () => {
        using lu = LiveUpdate.openSync(devicePath);
        held.push(...p.stage1(lu));
      };
      results.push(await timed(p.name, 1, run, options.onResult));
    }
  }
  return { results, held };
}

/** Stage 2, in the new kernel: each kexec program's post-kexec half. */
async function runStage2(lu: LiveUpdate, states: Map<KexecProgram, Session>, options: SelftestOptions): Promise<SelftestResult[]> {
  const results: SelftestResult[] = [];
  for (const p of kexecPrograms) {
    const state = states.get(p);
    const run = () => {
      if (!state) throw new Error(`its state session ${JSON.stringify(p.state.session)} was not handed over by the previous kernel`);
      p.stage2(lu, state);
    };
    results.push(await timed(p.name, 2, run, options.onResult));
  }
  return results;
}
