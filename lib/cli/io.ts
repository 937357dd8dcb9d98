import * as fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** What a command touches outside itself; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Where /proc is (tests point it at a fake tree). */
  procRoot: string;
  /** Where /sys is. */
  sysRoot: string;
  /** Who runs the command (what it may see of other processes); root when unset. */
  uid?: number;
}

export const realIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  procRoot: '/proc',
  sysRoot: '/sys',
  uid: process.getuid?.(),
};

/** Exit codes the commands share. */
export const EXIT = {
  ok: 0,
  /** A test failed, or the operation did. */
  failed: 1,
  /** The command line is wrong. */
  usage: 2,
  /** This machine cannot do it: no LUO device, no permission, nothing loaded. */
  unavailable: 3,
} as const;

/** An expected failure: printed as one line, without a stack. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failed) {
    super(message);
    this.name = 'CliError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseArgs gives back for `options` (no multiple-valued options here). */
export interface Parsed<T extends Options> {
  values: { [K in keyof T]?: T[K] extends { type: 'boolean' } ? boolean : string };
  positionals: string[];
}

/** parseArgs with usage errors turned into CliError. */
export function parse<T extends Options>(args: string[], options: T, allowPositionals = false): Parsed<T> {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true }) as Parsed<T>;
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.usage);
  }
}

/**
 * The candidate closest to `word` (edit distance at most 2, or a prefix),
 * for "did you mean"; undefined when none is close.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 1 : editDistance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** A usage error for an unknown (sub)command, with a suggestion when one is close. */
export function unknownCommand(what: string, word: string, candidates: readonly string[], helpCommand: string): CliError {
  const near = closest(word, candidates);
  return new CliError(`unknown ${what} ${JSON.stringify(word)}${near ? `; did you mean "${near}"?` : ''} (see \`${helpCommand} --help\`)`, EXIT.usage);
}

/**
 * `file` as given for `flag`, if it is a regular file this process can
 * read; otherwise a usage error saying which of those it is not.
 */
export function readableFile(file: string, flag: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new CliError(`${flag} ${file}: ${code === 'ENOENT' || code === 'ENOTDIR' ? 'no such file' : `cannot look at it (${code})`}`, EXIT.usage);
  }
  if (!stat.isFile()) throw new CliError(`${flag} ${file}: ${stat.isDirectory() ? 'is a directory' : 'is not a regular file'}`, EXIT.usage);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    throw new CliError(`${flag} ${file}: not readable by uid ${process.getuid?.()}`, EXIT.usage);
  }
  return file;
}
