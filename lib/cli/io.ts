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
}

export const realIo: Io = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  procRoot: '/proc',
  sysRoot: '/sys',
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
