import { execFile as execFileCb } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Reporter } from './progress';

const execFile = promisify(execFileCb);

/** The kernel's own C LUO selftests, built from the same source as the kernel. */
export interface KernelSelftests {
  dir: string;
  /** The device tests (kselftest TAP). */
  device: string;
  /** The two-stage programs, by upstream name. */
  programs: Record<'luo_kexec_simple' | 'luo_multi_session' | 'luo_stress_sessions' | 'luo_stress_files', string>;
}

/**
 * Builds tools/testing/selftests/liveupdate of `sourceDir` (with the
 * kernel's exported uAPI headers) into `outDir`, once.
 */
export async function buildKernelSelftests(sourceDir: string, outDir: string, report: Reporter): Promise<KernelSelftests> {
  const names = ['luo_kexec_simple', 'luo_multi_session', 'luo_stress_sessions', 'luo_stress_files'] as const;
  const result: KernelSelftests = {
    dir: outDir,
    device: path.join(outDir, 'liveupdate'),
    programs: Object.fromEntries(names.map((n) => [n, path.join(outDir, n)])) as KernelSelftests['programs'],
  };
  if ([result.device, ...Object.values(result.programs)].every((f) => fs.existsSync(f))) return result;
  report(`building the kernel's LUO selftests into ${outDir}\n`);
  await execFile('make', ['-C', sourceDir, 'headers'], { maxBuffer: 1 << 26 });
  fs.mkdirSync(outDir, { recursive: true });
  await execFile('make', ['-C', path.join(sourceDir, 'tools/testing/selftests/liveupdate'), `OUTPUT=${outDir}`], { maxBuffer: 1 << 26 });
  return result;
}
