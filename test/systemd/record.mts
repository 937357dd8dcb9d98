// What the guest side of the systemd scenario reports to the host: one JSON
// line per event in /vmout/systemd.jsonl (the results share), plus marker
// lines on stdout, which reach the serial console through the journal so the
// host can time them.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export const RESULTS = '/vmout/systemd.jsonl';
/** Prefix of the console lines the host times. */
export const MARK = 'liveupdate-systemd:';

/** vmm.service, once per boot. */
export interface VmmRecord {
  unit: 'vmm.service';
  /** 1 on the fresh boot, 2 after the first kexec, ... (KExecCount + 1). */
  boot: number;
  ok: boolean;
  error?: string;
  listen: { pid?: string; fds?: string; fdnames?: string };
  /** The session adopted from the fd named guest-ram, as the kernel reports it. */
  session?: { fd: number; name: string; direction: string };
  /** SHA-256 of the guest RAM: written (boot 1) or retrieved (boot 2). */
  sha256?: string;
  bytes?: number;
  /** Boot 2: boot 1's hash, read back from the results share. */
  expectedSha256?: string;
  /** Boot 2: LIVEUPDATE_SESSION_FINISH returned. */
  finished?: boolean;
  /** Milliseconds since the process started at each step (`loaded`: node and the module graph are up). */
  times?: Record<string, number>;
}

/** live-update.service, once per boot. */
export interface DriverRecord {
  unit: 'live-update.service';
  ok: boolean;
  error?: string;
  /** The Manager's KExecCount property, as busctl printed it. */
  kexecCountProperty: string;
  kexecCount: number;
  /** Commands run, with their exit status and output. */
  commands: Array<{ argv: string[]; status: number | null; stdout: string; stderr: string }>;
}

export type SystemdRecord = VmmRecord | DriverRecord;

export function record(r: SystemdRecord): void {
  fs.appendFileSync(RESULTS, `${JSON.stringify(r)}\n`);
}

export function mark(message: string): void {
  console.log(`${MARK} ${message}`);
}

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
