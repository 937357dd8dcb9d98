// Guest workload for selftest parity: the kernel's own C LUO selftests and
// this library's port of them (liveupdate/selftest) run in the same guest,
// stage 1, a real kexec, stage 2. Each outcome is a JSON line in
// $LIVEUPDATE_VM_OUT/parity.jsonl; test/vm/selftest-parity.test.ts compares.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSelftest } from 'liveupdate/selftest';
import { liveUpdateToNextStage, vmStage } from 'liveupdate/vm';

export interface ParityLine {
  suite: 'c' | 'js';
  /** 0 for the device cases, else the program's stage. */
  stage: number;
  name: string;
  ok: boolean;
  detail?: string;
}

const stage = vmStage();
const out = path.join(process.env.LIVEUPDATE_VM_OUT!, 'parity.jsonl');
const record = (line: ParityLine) => {
  fs.appendFileSync(out, `${JSON.stringify(line)}\n`);
  console.log(`${line.ok ? 'ok' : 'not ok'} - ${line.suite} stage ${line.stage}: ${line.name}`);
};
const cDir = process.env.LUO_C_SELFTESTS!;
const programs = ['luo_kexec_simple', 'luo_multi_session', 'luo_stress_sessions', 'luo_stress_files'];

function runC(file: string, args: string[]) {
  const r = spawnSync(path.join(cDir, file), args, { encoding: 'utf8', timeout: 300_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

if (stage === 1) {
  // kselftest TAP: "ok 3 liveupdate_device.create_duplicate_session"
  const device = runC('liveupdate', []);
  for (const m of device.output.matchAll(/^(ok|not ok) \d+ liveupdate_device\.(\w+)(.*)$/gm)) {
    record({ suite: 'c', stage: 0, name: m[2]!, ok: m[1] === 'ok' && !/# SKIP/.test(m[3]!), detail: m[0] });
  }
  const js = await runSelftest({ only: 'device', expectStage: 1 });
  for (const r of js.results) record({ suite: 'js', stage: 0, name: r.name, ok: r.ok, detail: r.error });
  // Each C program forks a child that holds its sessions, then exits.
  for (const p of programs) {
    const r = runC(p, ['-s', '1']);
    record({ suite: 'c', stage: 1, name: p, ok: r.ok, detail: r.output });
  }
  const kexecHalf = await runSelftest({ only: 'kexec', expectStage: 1 });
  for (const r of kexecHalf.results) record({ suite: 'js', stage: 1, name: r.name, ok: r.ok, detail: r.error });
  console.log(`liveupdate-vm: kexec holding ${kexecHalf.held.length} selftest sessions`);
  liveUpdateToNextStage();
} else {
  for (const p of programs) {
    const r = runC(p, ['-s', '2']);
    record({ suite: 'c', stage: 2, name: p, ok: r.ok, detail: r.output });
  }
  const js = await runSelftest({ only: 'kexec', expectStage: 2 });
  for (const r of js.results) record({ suite: 'js', stage: 2, name: r.name, ok: r.ok, detail: r.error });
}
