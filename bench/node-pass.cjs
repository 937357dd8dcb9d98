// One pass of the Node side of `npm run bench`, in its own process (the LUO
// device can be open in one process only, and the C reference runs between
// passes). The same sequences as bench/luo-bench.c, through the public API
// of the library at LIB (a checkout with dist/ built), sync and Promise.
// Each loop runs once untimed first (see timed()), so the figures are of
// warm code, as in a long-running process.
// Prints one JSON line per operation: {"impl":"node-sync"|"node-promise",…}.
//
//   node bench/node-pass.cjs LIB stage1 SESSIONS FILES GETNAMES FLOOR
//   node bench/node-pass.cjs LIB retrieve MODE SESSION FILES
//   node bench/node-pass.cjs LIB restore MODE SESSION FILES BYTES
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { promisify } = require('node:util');

const [lib, what, ...rest] = process.argv.slice(2);
const { LiveUpdate, Memfd } = require(path.resolve(lib, 'dist/index.js'));
const fstat = promisify(fs.fstat);
const open = promisify(fs.open);
const close = promisify(fs.close);
const read = promisify(fs.read);

const now = () => process.hrtime.bigint();
// A Promise call goes to the libuv pool and back: about a millisecond on the
// guest's one emulated CPU, Node core's own included. The long Promise loops
// (get_name, the floor) are capped at this, which keeps a pass to minutes.
const PROMISE_MAX = 1000;
function report(impl, op, n, ns) {
  process.stdout.write(`${JSON.stringify({ impl, op, n, ns: Number(ns) })}\n`);
}

async function timed(impl, op, n, run) {
  // Under emulation V8's optimizing compiler needs many calls to settle
  // (a library create+close ran ~3× slower right after 1000 than after
  // 4000), so the sync loops warm up at full size: the figures are those of
  // a long-running process. The Promise loops are dominated by the thread
  // hop, not by compiled code.
  await run(impl === 'node-sync' ? n : Math.max(1, Math.floor(n / 2)), 'warm');
  const t = now();
  await run(n, 'timed');
  report(impl, op, n, now() - t);
}

async function stage1(sessions, files, getnames, floor) {
  const lu = LiveUpdate.openSync();

  // The addon alone, without the library around it: what the native
  // crossing costs, apart from the library's own JavaScript.
  const binding = require(path.resolve(lib, 'dist/binding.js')).defaultBinding();
  // The addon's calling convention: since issue 8 the operation is an index
  // into its table and the inputs are positional; a --baseline library from
  // before takes the name and an object of arguments.
  const layout = binding.ioctlLayout;
  const indexed = typeof layout.LIVEUPDATE_SESSION_GET_NAME.index === 'number';
  const createRaw = indexed
    ? (name) => binding.ioctlSync(lu.fd, layout.LIVEUPDATE_IOCTL_CREATE_SESSION.index, name)
    : (name) => binding.ioctlSync(lu.fd, 'LIVEUPDATE_IOCTL_CREATE_SESSION', { name }).fd;
  const getNameRaw = indexed
    ? (fd) => binding.ioctlSync(fd, layout.LIVEUPDATE_SESSION_GET_NAME.index)
    : (fd) => binding.ioctlSync(fd, 'LIVEUPDATE_SESSION_GET_NAME', {}).name;
  await timed('node-sync', 'create-close-raw', sessions, (n, tag) => {
    for (let i = 0; i < n; i++) binding.closeSync(createRaw(`bench-raw-${tag}-${i}`));
  });
  await timed('node-sync', 'create-close', sessions, (n, tag) => {
    for (let i = 0; i < n; i++) lu.createSessionSync(`bench-js-${tag}-${i}`).close();
  });
  await timed('node-promise', 'create-close', sessions, async (n, tag) => {
    for (let i = 0; i < n; i++) (await lu.createSession(`bench-js-${tag}-${i}`)).close();
  });

  for (const impl of ['node-sync', 'node-promise']) {
    const memfds = Array.from({ length: files }, () => Memfd.createSync('bench'));
    // A fresh session per run: a memfd is preserved in one session only.
    const sessionsUsed = [];
    await timed(impl, 'preserve', files, async (n, tag) => {
      const s = lu.createSessionSync(`bench-js-preserve-${tag}`);
      sessionsUsed.push(s);
      const list = tag === 'warm' ? Array.from({ length: n }, () => Memfd.createSync('warm')) : memfds;
      if (tag === 'warm') memfds.push(...list);
      if (impl === 'node-sync') for (let i = 0; i < n; i++) s.preserveSync(list[i], i + 1);
      else for (let i = 0; i < n; i++) await s.preserve(list[i], i + 1);
    });
    const s = sessionsUsed[sessionsUsed.length - 1];
    await timed(impl, 'get-name', impl === 'node-sync' ? getnames : Math.min(getnames, PROMISE_MAX), async (n) => {
      if (impl === 'node-sync') for (let i = 0; i < n; i++) s.getNameSync();
      else for (let i = 0; i < n; i++) await s.getName();
    });
    if (impl === 'node-sync') {
      await timed(impl, 'get-name-raw', getnames, (n) => {
        for (let i = 0; i < n; i++) getNameRaw(s.fd);
      });
    }
    for (const x of sessionsUsed) x.close();
    for (const m of memfds) m.close();
  }

  await timed('node-sync', 'fstat', floor, (n) => {
    for (let i = 0; i < n; i++) fs.fstatSync(lu.fd);
  });
  await timed('node-promise', 'fstat', Math.min(floor, PROMISE_MAX), async (n) => {
    for (let i = 0; i < n; i++) await fstat(lu.fd);
  });
  await timed('node-sync', 'open-close', floor, (n) => {
    for (let i = 0; i < n; i++) fs.closeSync(fs.openSync('/dev/null', 'r'));
  });
  await timed('node-promise', 'open-close', Math.min(floor, PROMISE_MAX), async (n) => {
    for (let i = 0; i < n; i++) await close(await open('/dev/null', 'r'));
  });
  lu.close();
}

// After the kexec: no warm-up is possible (each session is retrieved once),
// so these rows include first-call costs, for C as well.
async function retrieve(op, mode, name, files, bytes) {
  const lu = LiveUpdate.openSync();
  const pattern = Buffer.alloc(bytes + 256);
  for (let k = 0; k < pattern.length; k++) pattern[k] = k & 0xff;
  const buf = Buffer.alloc(bytes);
  const check = (i) => {
    if (!buf.equals(pattern.subarray(i & 0xff, (i & 0xff) + bytes))) throw new Error(`file ${i} differs`);
  };
  const impl = `node-${mode}`;
  const t = now();
  if (mode === 'sync') {
    const s = lu.retrieveSessionSync(name);
    for (let i = 0; i < files; i++) {
      const f = s.retrieveSync(i + 1);
      if (bytes) {
        if (fs.readSync(f.fd, buf, 0, bytes, 0) !== bytes) throw new Error('short read');
        check(i);
      }
      f.close();
    }
    s.finishSync();
    report(impl, op, files, now() - t);
    s.close();
  } else {
    const s = await lu.retrieveSession(name);
    for (let i = 0; i < files; i++) {
      const f = await s.retrieve(i + 1);
      if (bytes) {
        if ((await read(f.fd, buf, 0, bytes, 0)).bytesRead !== bytes) throw new Error('short read');
        check(i);
      }
      f.close();
    }
    await s.finish();
    report(impl, op, files, now() - t);
    s.close();
  }
  lu.close();
}

async function main() {
  const n = rest.map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  if (what === 'stage1') await stage1(...n);
  else if (what === 'retrieve') await retrieve('retrieve-finish', n[0], n[1], n[2], 0);
  else if (what === 'restore') await retrieve('restore-verify', n[0], n[1], n[2], n[3]);
  else throw new Error(`unknown step ${what}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
