// The size sweep's shared rules (issue 8), used by the guest side, the Node
// passes and the report, so every implementation moves the same bytes:
// how many files of each size, and their contents.
'use strict';
const fs = require('node:fs');

// Each size is measured on enough files to add up to about BUDGET bytes
// (one file from 16 MiB up), so small sizes are not a single noisy call and
// large ones fit the guest's memory: every implementation's files stay
// preserved together across the kexec.
const BUDGET = 16 << 20;
const MAX_FILES = 16;

function filesFor(size) {
  return Math.max(1, Math.min(MAX_FILES, Math.floor(BUDGET / size)));
}

// A loop stall is one sample of a noisy thing: the forms whose stalls the
// report shows (C's two references and the Promise forms) watch WINDOWS
// windows per size and report the worst, preserving fresh memfds in each
// and, after the kexec, retrieving a session of their own in each. From
// ONE_WINDOW_FROM up they watch one: every window's files stay preserved
// through the kexec, and three 1 GiB windows for each of four forms would
// need 8 GiB more of guest memory than one each.
const WINDOWS = 3;
const ONE_WINDOW_FROM = 1 << 30;
const LOOP_DELAY_FORMS = ['c', 'c-uv', 'promise', 'concurrent'];
function windowsFor(form, size) {
  return LOOP_DELAY_FORMS.includes(form) && size < ONE_WINDOW_FROM ? WINDOWS : 1;
}

// What the guest holds preserved through the kexec for the sweep: for
// each form, a warm-up session of 4 KiB files and windowsFor(form, size)
// sessions per size (bench/guest.cjs makes them).
function sweepBytes(sizes, forms) {
  let bytes = 0;
  for (const form of forms) {
    bytes += filesFor(4096) * 4096;
    for (const size of sizes) bytes += windowsFor(form, size) * filesFor(size) * size;
  }
  return bytes;
}

// The session a form's window W (0-based) retrieves after the kexec.
function windowSession(prefix, size, w) {
  return w === 0 ? `${prefix}-${size}` : `${prefix}-${size}-w${w}`;
}

// Byte k of file i is (i + k) & 0xff, as in the restore rows and
// bench/luo-bench.c. `pattern(size)` holds size + 256 bytes; file i's
// expected contents are pattern.subarray(i & 0xff, (i & 0xff) + size).
// Filled by repeating a 256-byte block: a byte-by-byte JS loop over
// hundreds of MiB takes seconds under emulation.
function pattern(size) {
  const block = Buffer.alloc(256);
  for (let k = 0; k < 256; k++) block[k] = k;
  return Buffer.allocUnsafe(size + 256).fill(block);
}

// Writes file i's contents (see pattern) into fd, all SIZE bytes: a
// short write would preserve a truncated file and fail only after the
// kexec, far from its cause.
function writePattern(fd, data, i, size) {
  const wrote = fs.writeSync(fd, data, i & 0xff, size, 0);
  if (wrote !== size) throw new Error(`bench: wrote ${wrote} of ${size} bytes into a memfd`);
}

// Each file is written, read and compared in one call, and Node's
// fs.writeSync and one write(2) take less than 2 GiB.
const MAX_SIZE = 1 << 30;

// "4K,64K,1M,256M" -> bytes.
function parseSizes(spec) {
  return spec.split(',').map((s) => {
    const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(s.trim());
    if (!m) throw new Error(`--sizes: cannot read ${JSON.stringify(s)} (e.g. 4K,1M,256M)`);
    const bytes = Number(m[1]) * { '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 }[m[2].toUpperCase()];
    if (bytes < 1 || bytes > MAX_SIZE) throw new Error(`--sizes: ${s.trim()} is outside 1 byte to 1G`);
    return bytes;
  });
}

function sizeLabel(bytes) {
  if (bytes >= 1 << 30 && bytes % (1 << 30) === 0) return `${bytes / (1 << 30)} GiB`;
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1 << 10 && bytes % (1 << 10) === 0) return `${bytes / (1 << 10)} KiB`;
  return `${bytes} B`;
}

module.exports = { filesFor, WINDOWS, windowsFor, sweepBytes, windowSession, pattern, writePattern, parseSizes, sizeLabel };
