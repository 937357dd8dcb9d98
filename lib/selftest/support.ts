import * as fs from 'node:fs';
import type { LiveUpdate } from '../liveupdate';
import { Memfd } from '../memfd';
import type { Session } from '../session';

/** One device test, named as upstream names its TEST_F. */
export interface SelftestCase {
  name: string;
  run(devicePath: string): void | Promise<void>;
}

/**
 * One two-stage program (upstream luo_kexec_simple, …). Stage 1 returns the
 * sessions that must stay open through the kexec; stage 2 gets the
 * retrieved state session, as upstream's luo_test() hands it over.
 */
export interface KexecProgram {
  name: string;
  state: { session: string; token: number };
  stage1(lu: LiveUpdate): Session[];
  stage2(lu: LiveUpdate, state: Session): void;
}

/** The outcome of one case or program stage. */
export interface SelftestResult {
  name: string;
  stage: 0 | 1 | 2;
  ok: boolean;
  ms: number;
  error?: string;
}

export function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    const actual = (err as { code?: string }).code;
    if (actual === code) return;
    throw new Error(`expected ${code}, got ${actual ?? 'an error without code'}: ${(err as Error).message}`);
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** The whole file read from offset 0, without moving the file position. */
export function readText(fd: number): string {
  const { size } = fs.fstatSync(fd);
  const buf = Buffer.alloc(size);
  fs.readSync(fd, buf, 0, size, 0);
  return buf.toString();
}

/** Upstream's create_and_preserve_memfd(): a memfd holding `data`, preserved under `token`. */
export function preserveText(session: Session, token: number, data: string): void {
  using m = Memfd.createSync('test_memfd', { allowSealing: false });
  fs.writeSync(m.fd, data);
  session.preserveSync(m, token);
}

/** Upstream's restore_and_verify_memfd(). */
export function verifyText(session: Session, token: number, data: string): void {
  using fd = session.retrieveSync(token);
  const actual = readText(fd.fd);
  if (actual !== data) throw new Error(`data mismatch for token ${token}: expected ${JSON.stringify(data)}, got ${JSON.stringify(actual)}`);
}
