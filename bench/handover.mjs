#!/usr/bin/env node
// How long a live update takes against how the preserved memory lies in
// physical memory: one boot of the project's LUO guest per case, each
// preserving one memfd and live-updating (bench/handover-guest.cjs). The
// host stamps the guest's console lines as they arrive, as bench/run.mjs
// does for the live update in `npm run bench`.
//
//   node bench/handover.mjs [--pages 32768,65536,131072] [--layouts contiguous,scattered] [--memory 4G]
//
// The new kernel reserves each preserved page with memblock while it boots
// (kho_preserved_memory_reserve() in kernel/liveupdate/kexec_handover.c);
// neighbouring pages merge into one region, others each add one, and each
// addition walks the regions already there. So the time should follow the
// number of separate pieces, which the guest counts from /proc/self/pagemap.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { cacheRoot, ensureKernel, runVm, stderrReporter } = require(path.join(root, 'dist/vm/index.js'));
const { kvmUsable } = require(path.join(root, 'dist/vm/qemu.js'));

const { values } = parseArgs({
  options: {
    pages: { type: 'string', default: '32768,65536,131072' },
    layouts: { type: 'string', default: 'contiguous,scattered' },
    memory: { type: 'string', default: '4G' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`node bench/handover.mjs [options]: time from reboot(KEXEC) to the new kernel's init, one boot per
case, each preserving one memfd of a number of 4 KiB pages laid out one way.

  --pages LIST     the memfd's pages, one case each (default 32768,65536,131072)
  --layouts LIST   contiguous: written in one go into fresh memory;
                   scattered: every other page frame (default both)
  --memory SIZE    the guest's memory (default 4G)
  -h, --help       this text
`);
  process.exit(0);
}
const pageCounts = values.pages.split(',').map(Number);
if (pageCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 1 << 18)) throw new Error('--pages: whole numbers from 1 to 262144');
const layouts = values.layouts.split(',');
if (layouts.some((l) => l !== 'contiguous' && l !== 'scattered')) throw new Error('--layouts: contiguous, scattered');

const report = stderrReporter('[handover]');
const kernel = await ensureKernel({ report });
const accel = kvmUsable() ? 'KVM' : 'TCG software emulation';
report(`kernel ${kernel.version}, ${accel}, 1 vCPU, ${values.memory}\n`);
const results = [];
for (const layout of layouts) {
  for (const pages of pageCounts) {
    const marks = {};
    let info;
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-handover-'));
    const vm = await runVm({
      kernel: kernel.bzImage,
      argv: [process.execPath, path.join(root, 'bench/handover-guest.cjs')],
      cwd: root,
      env: { HANDOVER_PAGES: String(pages), HANDOVER_LAYOUT: layout },
      outDir,
      workDir: path.join(cacheRoot(), 'vm'),
      cpus: 1,
      memory: values.memory,
      timeoutMs: 30 * 60_000,
      onConsole: (line) => {
        if (/^handover: \{/.test(line)) info = JSON.parse(line.slice('handover: '.length));
        else if (/^handover: reboot\(KEXEC\) now/.test(line)) marks.reboot = performance.now();
        else if (/^liveupdate-vm: stage 2 /.test(line)) marks.init = performance.now();
      },
    });
    fs.rmSync(outDir, { recursive: true, force: true });
    if (!info || marks.init === undefined) throw new Error(`handover: the ${layout} case of ${pages} pages did not reach stage 2 (exit ${vm.exitCode}${vm.timedOut ? ', timed out' : ''})`);
    const r = { layout, pages, pieces: info.pieces, rebootToInitS: Number(((marks.init - marks.reboot) / 1000).toFixed(2)) };
    report(`${JSON.stringify(r)}\n`);
    results.push(r);
  }
}
const mib = (pages) => `${(pages * 4096) / 2 ** 20} MiB`;
process.stdout.write(`\n| layout | memfd | separate pieces | reboot(KEXEC) to the new init |\n|---|---|---|---|\n`);
for (const r of results) process.stdout.write(`| ${r.layout} | ${r.pages} pages (${mib(r.pages)}) | ${r.pieces} | ${r.rebootToInitS.toFixed(1)} s |\n`);
process.stdout.write(`\n${accel}, 1 vCPU, ${values.memory}; node bench/handover.mjs ${process.argv.slice(2).join(' ')}\n`);
