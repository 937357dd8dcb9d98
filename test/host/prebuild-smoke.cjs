// Run by prebuilds.test.ts under each runnable prebuild's own node (the
// host's, or Debian's arm64 node under qemu-aarch64), with
// LIVEUPDATE_PREBUILD and PREBUILDS_ONLY set so that the package loads its
// addon from the prebuilds through node-gyp-build, as an installed package
// without a local build does. Prints one JSON line of what it saw.
//   node prebuild-smoke.cjs PACKAGE_ROOT
'use strict';
const fs = require('node:fs');
const path = require('node:path');

async function main() {
  const root = process.argv[2];
  const lu = require(path.join(root, 'dist'));
  const loaded = require(require.resolve('node-gyp-build', { paths: [root] })).path(root);

  // A sealed memfd, sync and on the thread pool.
  const memfd = lu.Memfd.createSync('smoke', { size: 4096 });
  fs.writeSync(memfd.fd, 'carried', 0, 'utf8', 0);
  memfd.addSealsSync(['shrink', 'grow']);
  await memfd.addSeals(['seal']);
  const seals = (await memfd.getSeals()).sort();
  let resealed;
  try {
    memfd.addSealsSync(['write']);
  } catch (err) {
    resealed = err.code; // EPERM: F_SEAL_SEAL forbids more seals
  }

  // Mapped (the external ArrayBuffer and its finalizer, in this libc's build).
  const mapping = memfd.mapSync({ length: 7 });
  const mapped = Buffer.from(mapping.buffer).toString();
  mapping.unmap();
  const unmappedLength = mapping.buffer.byteLength;

  // The memfd over an FdSocket pair; the far end reads it and its seals.
  const [a, b] = lu.FdSocket.pair();
  const received = b.receive();
  await a.send('here', [memfd]);
  const message = await received;
  const copy = lu.Memfd.from(message.fds[0]);
  const buf = Buffer.alloc(7);
  fs.readSync(copy.fd, buf, 0, 7, 0);
  const result = {
    arch: process.arch,
    glibc: process.report.getReport().header.glibcVersionRuntime ?? null,
    node: process.version,
    loaded,
    seals,
    resealed,
    payload: message.payload.toString(),
    content: buf.toString(),
    mapped,
    unmappedLength,
    receivedSeals: copy.getSealsSync().sort(),
    sameFile: fs.fstatSync(copy.fd).ino === fs.fstatSync(memfd.fd).ino,
  };
  for (const o of [copy, memfd, a, b]) o.close();

  // Errors cross from C++ (exceptions in the statically linked libc++) to JS.
  const binding = require(loaded);
  try {
    binding.getSealsSync(999_999); // not open
  } catch (err) {
    result.badFd = err.code;
  }
  try {
    binding.memfdCreateSync(42, 0);
  } catch (err) {
    result.badArgument = err.constructor.name;
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
