import type { SelftestResult } from './support';

/** TAP 13, the format kselftest prints. */
export function tapLine(result: SelftestResult, index: number): string {
  const name = `${result.stage === 0 ? 'liveupdate_device' : `stage ${result.stage}`}.${result.name}`;
  if (result.ok) return `ok ${index} - ${name} # ${result.ms} ms`;
  const detail = (result.error ?? '').split('\n').map((l) => `    ${l}`).join('\n');
  return `not ok ${index} - ${name}\n  ---\n  message: |\n${detail}\n  ...`;
}

/** One line a person reads. */
export function humanLine(result: SelftestResult): string {
  const where = result.stage === 0 ? 'device ' : `stage ${result.stage}`;
  const head = `${result.ok ? 'PASS' : 'FAIL'}  ${where}  ${result.name} (${result.ms} ms)`;
  return result.ok ? head : `${head}\n      ${(result.error ?? '').split('\n')[0]}`;
}

export function summary(results: SelftestResult[]): string {
  const failed = results.filter((r) => !r.ok).length;
  return `${results.length - failed} passed, ${failed} failed`;
}
