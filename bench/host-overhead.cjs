// The library's own cost per session create+close, get_name and retrieve+close, on
// the host, without a LUO device: the real addon, with the ioctls answered
// by a native stand-in (a dup of /dev/null for a new fd), so that "raw"
// and "lib" differ only by the library's JavaScript. Used for issue 8's
// profile; not part of `npm test` or `npm run bench`.
//
//   npm run build && node bench/host-overhead.cjs [LIB_DIR]
//   node --cpu-prof bench/host-overhead.cjs   (then open the .cpuprofile)
//
// Prints min / p25 / median ns per op over 15 rounds of 20 000.
'use strict';
const path = require('node:path');
const lib = process.argv[2] ?? path.resolve(__dirname, '..');
const { LiveUpdate } = require(path.join(lib, 'dist/index.js'));
const real = require(path.join(lib, 'dist/binding.js')).defaultBinding();
const fs = require('node:fs');
const base = fs.openSync('/dev/null', 'r');
const L = real.ioctlLayout;
const CREATE = L.LIVEUPDATE_IOCTL_CREATE_SESSION.index;
const RETRIEVE_SESSION = L.LIVEUPDATE_IOCTL_RETRIEVE_SESSION.index;
const RETRIEVE = L.LIVEUPDATE_SESSION_RETRIEVE_FD.index;
const GN = L.LIVEUPDATE_SESSION_GET_NAME.index;
const dup = real.unix.dup;
let devfd = -1;
// Every stand-in answer makes native calls, as the real ioctl would: a new
// fd for create, retrieve-session and retrieve; for get_name a dup and
// close (the device answers EINVAL, as LUO does to the open probe).
const binding = Object.create(real);
binding.ioctlSync = (fd, op) => {
  if (op === CREATE || op === RETRIEVE_SESSION || op === RETRIEVE) return dup(base);
  if (fd === devfd) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
  real.closeSync(dup(base));
  return 'x';
};
binding.openSync = () => (devfd = dup(base));
const lu = LiveUpdate.openSync('/dev/null', { binding });
const now = () => process.hrtime.bigint();
let k = 0;
const s0 = lu.createSessionSync('keep');
const incoming = lu.retrieveSessionSync('kept');
const V = {
  raw: (n) => { for (let i = 0; i < n; i++) binding.closeSync(binding.ioctlSync(lu.fd, CREATE, `r${k++}`)); },
  lib: (n) => { for (let i = 0; i < n; i++) lu.createSessionSync(`l${k++}`).close(); },
  rawGN: (n) => { const fd = s0.fd; for (let i = 0; i < n; i++) binding.ioctlSync(fd, GN); },
  libGN: (n) => { for (let i = 0; i < n; i++) s0.getNameSync(); },
  rawRet: (n) => { const fd = incoming.fd; for (let i = 0; i < n; i++) binding.closeSync(binding.ioctlSync(fd, RETRIEVE, i + 1)); },
  libRet: (n) => { for (let i = 0; i < n; i++) incoming.retrieveSync(i + 1).close(); },
};
const names = Object.keys(V);
const N = 20000, R = 15;
for (const n of names) { V[n](N); V[n](N); }
const res = Object.fromEntries(names.map((n) => [n, []]));
for (let r = 0; r < R; r++) for (const n of names) { const t = now(); V[n](N); res[n].push(Number(now() - t) / N); }
for (const n of names) { const a = res[n].sort((x, y) => x - y); console.log(n.padEnd(8), 'min', a[0].toFixed(0), 'p25', a[a.length >> 2].toFixed(0), 'med', a[a.length >> 1].toFixed(0), 'ns'); }
s0.close();
incoming.close();
lu.close();
fs.closeSync(base);
