// The kernel's two-stage LUO selftests (luo_kexec_simple, luo_multi_session,
// luo_stress_sessions, luo_stress_files), same names, tokens, sizes and
// counts, written against this library's public API. Each carries its
// stage in a preserved memfd, as upstream's create_state_file() does. Every
// session name gets a `js-` prefix, so this port and the C programs can
// hold their sessions in the same kernel at once.
const n = (upstreamName: string) => `js-${upstreamName}`;
import type { Session } from '../session';
import { type KexecProgram, preserveText, readText, verifyText } from './support';

function checkStage(state: Session, token: number): void {
  using fd = state.retrieveSync(token);
  const stage = Number.parseInt(readText(fd.fd), 10);
  if (stage !== 2) throw new Error(`expected stage 2, but the state file contains ${stage}`);
}

function finishAll(...sessions: Session[]): void {
  for (const s of sessions) {
    s.finishSync();
    s.close();
  }
}

function withState(name: string, token: number, program: Omit<KexecProgram, 'state' | 'name'>): KexecProgram {
  return {
    name,
    state: { session: n(`${name}-state`), token },
    stage1(lu) {
      const state = lu.createSessionSync(n(`${name}-state`));
      preserveText(state, token, '2');
      return [state, ...program.stage1(lu)];
    },
    stage2(lu, state) {
      checkStage(state, token);
      program.stage2(lu, state);
      finishAll(state);
    },
  };
}

const simple = withState('luo_kexec_simple', 999, {
  stage1(lu) {
    const s = lu.createSessionSync(n('test-session'));
    preserveText(s, 0x1a, 'hello kexec world');
    return [s];
  },
  stage2(lu) {
    const s = lu.retrieveSessionSync(n('test-session'));
    verifyText(s, 0x1a, 'hello kexec world');
    finishAll(s);
  },
});

const FILES_1 = { 0x1001: 'Data for session files 1' };
const FILES_2 = { 0x2002: 'First file for session files 2', 0x3003: 'Second file for session files 2' };

const multi = withState('luo_multi_session', 998, {
  stage1(lu) {
    const empty1 = lu.createSessionSync(n('multi-test-empty-1'));
    const empty2 = lu.createSessionSync(n('multi-test-empty-2'));
    const files1 = lu.createSessionSync(n('multi-test-files-1'));
    for (const [token, data] of Object.entries(FILES_1)) preserveText(files1, Number(token), data);
    const files2 = lu.createSessionSync(n('multi-test-files-2'));
    for (const [token, data] of Object.entries(FILES_2)) preserveText(files2, Number(token), data);
    return [empty1, empty2, files1, files2];
  },
  stage2(lu) {
    const [empty1, empty2, files1, files2] = ['multi-test-empty-1', 'multi-test-empty-2', 'multi-test-files-1', 'multi-test-files-2'].map(
      (name) => lu.retrieveSessionSync(n(name)),
    ) as [Session, Session, Session, Session];
    for (const [token, data] of Object.entries(FILES_1)) verifyText(files1, Number(token), data);
    for (const [token, data] of Object.entries(FILES_2)) verifyText(files2, Number(token), data);
    finishAll(empty1, empty2, files1, files2);
  },
});

const SESSIONS = 2000;
const stressSessions = withState('luo_stress_sessions', 999, {
  stage1(lu) {
    return Array.from({ length: SESSIONS }, (_, i) => lu.createSessionSync(n(`many-test-${i}`)));
  },
  stage2(lu) {
    for (let i = 0; i < SESSIONS; i++) finishAll(lu.retrieveSessionSync(n(`many-test-${i}`)));
  },
});

const FILES = 500;
const fileData = (i: number) => `file-data-${i}`;
const stressFiles = withState('luo_stress_files', 9999, {
  stage1(lu) {
    const s = lu.createSessionSync(n('many_files_session'));
    for (let i = 0; i < FILES; i++) preserveText(s, i, fileData(i));
    return [s];
  },
  stage2(lu) {
    const s = lu.retrieveSessionSync(n('many_files_session'));
    for (let i = 0; i < FILES; i++) verifyText(s, i, fileData(i));
    finishAll(s);
  },
});

export const kexecPrograms: KexecProgram[] = [simple, multi, stressSessions, stressFiles];

