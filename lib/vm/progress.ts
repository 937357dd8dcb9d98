// One-line progress for long steps (an 8-minute kernel build): rewritten in
// place on a terminal, a line per step of progress otherwise (CI logs).

export type Reporter = (message: string) => void;

export function stderrReporter(prefix = '[liveupdate]'): Reporter {
  const tty = process.stderr.isTTY;
  let lastLogged = '';
  return (message) => {
    if (tty) {
      process.stderr.write(`\r\x1b[2K${prefix} ${message}`);
      if (message.endsWith('\n')) lastLogged = '';
      return;
    }
    const line = message.trimEnd();
    if (line !== lastLogged) process.stderr.write(`${prefix} ${line}\n`);
    lastLogged = line;
  };
}

/** Formats milliseconds as `3m07s`. */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}
