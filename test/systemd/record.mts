// What the guest side of the systemd scenario reports to the host: one JSON
// line per event in /vmout/systemd.jsonl (the results share, made writable
// for every uid by the host), plus marker lines on stdout, which reach the
// serial console through the journal so the host can time them.
// vmm.service is the shipped example and reports only on its stdout.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export const RESULTS = '/vmout/systemd.jsonl';
/** Prefix of the console lines the host times. */
export const MARK = 'liveupdate-systemd:';

interface Base {
  /** 1 on the fresh boot, 2 after the first kexec, ... (KExecCount + 1). */
  boot: number;
  ok: boolean;
  error?: string;
}

/** A file as it came back, or an error as the library reported it. */
export interface Outcome {
  content?: string;
  seals?: string[];
  code?: string;
  message?: string;
}

/** store.service, once per boot. */
export interface StoreRecord extends Base {
  unit: 'store.service';
  /** What LISTEN_FDS held at start: FDNAME -> kind (and a session's name and direction). */
  listened: Record<string, { kind: string; name?: string; direction?: string }>;
  /** Boot 1: what was stored, with content and seals. */
  stored?: Record<string, Outcome>;
  /** Boot 1: storeFds() of a session named "systemd", and of bad FDNAMEs. */
  refused?: Record<string, Outcome>;
  /** Boot 2: what came back, read through the library. */
  back?: Record<string, Outcome>;
  /** Boot 2: LIVEUPDATE_SESSION_FINISH on the incoming session returned. */
  finished?: boolean;
}

/** broker-client-*.service, once per boot. */
export interface BrokerClientRecord extends Base {
  unit: 'broker-client';
  uid: number;
  /** Boot 1: createSession() and preserve() per name: the content, or the error. */
  created?: Record<string, Outcome>;
  /** listSessions() after creating (boot 1) or before retrieving (later boots). */
  listed: Array<{ name: string; state: string }>;
  /** Later boots: retrieveSession() per listed name, then the memfd at token 7. */
  retrieved?: Record<string, Outcome>;
}

/** live-update.service, once per boot. */
export interface DriverRecord extends Base {
  unit: 'live-update.service';
  /** The Manager's KExecCount property, as busctl printed it. */
  kexecCountProperty: string;
  kexecCount: number;
  /** Commands run, with their exit status and output. */
  commands: Array<{ argv: string[]; status: number | null; stdout: string; stderr: string }>;
}

export type SystemdRecord = StoreRecord | BrokerClientRecord | DriverRecord;

export function record(r: SystemdRecord): void {
  fs.appendFileSync(RESULTS, `${JSON.stringify(r)}\n`);
}

export function mark(message: string): void {
  console.log(`${MARK} ${message}`);
}

/** An error as a record shows it: the fields a caller acts on. */
export const outcomeOf = (err: unknown): Outcome => ({ code: (err as { code?: string }).code ?? 'none', message: (err as Error).message });

/**
 * The Manager's KExecCount property (systemd 262): how many live updates
 * this boot is from the fresh one. NaN if busctl gave no number.
 */
export function kexecCount(): { property: string; count: number } {
  const property = execFileSync('busctl', ['get-property', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager', 'KExecCount'], {
    encoding: 'utf8',
  }).trim();
  return { property, count: Number(/^u (\d+)$/.exec(property)?.[1] ?? NaN) };
}
