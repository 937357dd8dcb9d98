/**
 * The kernel's LUO selftests (tools/testing/selftests/liveupdate), ported
 * to this library's public API: 15 device cases and 4 two-stage programs.
 * @packageDocumentation
 */
export { deviceCases } from './device';
export { kexecPrograms } from './kexec';
export { runSelftest, type SelftestOptions, type SelftestRun } from './run';
export { tapLine, humanLine, summary } from './report';
export type { SelftestCase, KexecProgram, SelftestResult } from './support';
