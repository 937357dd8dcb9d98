// The guest side of bench/handover.mjs. Stage 1 preserves one memfd of
// HANDOVER_PAGES pages laid out as HANDOVER_LAYOUT says, counts the
// separate pieces of physical memory it occupies, and live-updates; stage 2
// only announces itself (the host times the gap from its console).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { LiveUpdate, Memfd, kexec } = require(path.join(root, 'dist/index.js'));
const { nextStageCmdline } = require(path.join(root, 'dist/vm/qemu.js'));

const PAGE = 4096;
const stage = Number(process.env.LIVEUPDATE_VM_STAGE);
const pages = Number(process.env.HANDOVER_PAGES);
const layout = process.env.HANDOVER_LAYOUT;

// Runs of consecutive page frames behind the memfd: the pieces the new
// kernel reserves one by one. Read from /proc/self/pagemap (bits 0-54: the
// frame, bit 63: present) over the memfd's mapping, found by name in
// /proc/self/maps once every page is faulted in.
function pieces(memfd) {
  const map = memfd.mapSync();
  const bytes = new Uint8Array(map.buffer);
  let sum = 0;
  for (let k = 0; k < pages; k++) sum += bytes[k * PAGE];
  const line = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').find((l) => l.includes('/memfd:handover'));
  const start = BigInt(`0x${line.split('-')[0]}`);
  const entries = Buffer.alloc(pages * 8);
  const fd = fs.openSync('/proc/self/pagemap', 'r');
  fs.readSync(fd, entries, 0, entries.length, Number((start / BigInt(PAGE)) * 8n));
  fs.closeSync(fd);
  map.unmap();
  let runs = 0;
  let last = -2n;
  for (let k = 0; k < pages; k++) {
    const e = entries.readBigUInt64LE(k * 8);
    if (!(e >> 63n)) throw new Error(`page ${k} not present (${sum})`);
    const pfn = e & ((1n << 55n) - 1n);
    if (pfn !== last + 1n) runs++;
    last = pfn;
  }
  return runs;
}

if (stage === 1) {
  const lu = LiveUpdate.openSync();
  const memfd = Memfd.createSync('handover', { allowSealing: true });
  if (layout === 'contiguous') {
    // Written in one go into memory nothing else has used yet: the
    // allocator hands out neighbouring frames.
    const all = Buffer.alloc(pages * PAGE, 0x5a);
    if (fs.writeSync(memfd.fd, all, 0, all.length, 0) !== all.length) throw new Error('short write');
  } else {
    // Page by page, each followed by one page of another memfd that is then
    // freed: every other frame, as memory that a busy machine filled bit by
    // bit.
    const other = Memfd.createSync('other');
    const page = Buffer.alloc(PAGE, 0x5a);
    for (let k = 0; k < pages; k++) {
      fs.writeSync(memfd.fd, page, 0, PAGE, k * PAGE);
      fs.writeSync(other.fd, page, 0, PAGE, k * PAGE);
    }
    other.close();
  }
  memfd.addSealsSync(['shrink']);
  const n = pieces(memfd);
  const session = lu.createSessionSync('handover');
  session.preserveSync(memfd, 1);
  memfd.close();
  console.log(`handover: ${JSON.stringify({ pages, layout, pieces: n })}`);
  kexec.loadSync({ kernel: process.env.LIVEUPDATE_VM_KERNEL, cmdline: nextStageCmdline(2) });
  console.log('handover: reboot(KEXEC) now');
  kexec.rebootSync();
} else {
  console.log(`handover: stage 2 started, uptime ${fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]} s`);
}
