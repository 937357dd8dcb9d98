// store.service's program, modelled on systemd's TEST-91-LIVEUPDATE. Boot 1:
// two sealed memfds and a session it creates itself (a memfd at token 42)
// go into the fd store with storeFds(), then notifyBarrier() makes sure
// systemd has them, then the process kills itself with SIGKILL. Boot 2:
// everything comes back in LISTEN_FDS; the memfds with their contents and
// seals, the session incoming with its memfd; then the service FINISHes
// the session and empties its store. Later boots: nothing is stored.
import * as fs from 'node:fs';
import { LiveUpdate, Memfd, type SealName } from 'liveupdate';
import { listenFds, notifyBarrier, removeStoredFds, storeFds } from 'liveupdate/systemd';
import { type Outcome, type StoreRecord, kexecCount, mark, outcomeOf, record } from './record.mjs';

const MEMFDS: Record<string, { content: string; seals: SealName[] }> = {
  testfd1: { content: 'testfd1: sealed against every change in boot 1', seals: ['seal', 'shrink', 'grow', 'write'] },
  testfd2: { content: 'testfd2: may not grow or shrink', seals: ['shrink', 'grow'] },
};
const DIRECT = { fdName: 'direct', session: 'luosession-direct', token: 42, content: 'in a session the service created itself' };

const read = (fd: number) => fs.readFileSync(`/proc/self/fd/${fd}`, 'utf8');
const listened = listenFds();
const r: StoreRecord = {
  unit: 'store.service',
  boot: NaN,
  ok: false,
  listened: Object.fromEntries(
    listened.map((f) => [f.name, f.kind === 'session' ? { kind: f.kind, name: f.file.name, direction: f.file.direction } : { kind: f.kind }]),
  ),
};
try {
  r.boot = kexecCount().count + 1;
  if (r.boot === 1) await firstBoot();
  else if (r.boot === 2) await afterLiveUpdate();
  else r.ok = listened.length === 0;
} catch (err) {
  r.error = (err as Error).stack ?? String(err);
}
record(r);

async function firstBoot() {
  r.stored = {};
  for (const [name, { content, seals }] of Object.entries(MEMFDS)) {
    using memfd = Memfd.createSync(name);
    fs.writeSync(memfd.fd, content);
    memfd.addSealsSync(seals);
    await storeFds(name, [memfd]); // systemd keeps a duplicate: ours can close
    r.stored[name] = { content, seals: memfd.getSealsSync() };
  }
  // Open the device only for as long as it takes: PID 1 opens it too.
  const lu = await LiveUpdate.open(undefined, { retryBusyMs: 10_000 });
  let direct, hijack;
  try {
    direct = lu.createSessionSync(DIRECT.session);
    hijack = lu.createSessionSync('systemd');
  } finally {
    lu.close();
  }
  using memfd = Memfd.createSync(DIRECT.fdName);
  fs.writeSync(memfd.fd, DIRECT.content);
  direct.preserveSync(memfd, DIRECT.token);
  await storeFds(DIRECT.fdName, [direct]);
  r.stored[DIRECT.fdName] = { content: DIRECT.content };
  r.refused = {};
  for (const [what, attempt] of [
    ['session named systemd', () => storeFds('hijack', [hijack])],
    ['FDNAME with ":"', () => storeFds('a:b', [memfd])],
    ['non-ASCII FDNAME', () => storeFds('gäst', [memfd])],
  ] as const) {
    r.refused[what] = await attempt().then(() => ({ code: 'stored' }) as Outcome, outcomeOf);
  }
  // systemd-shutdown makes its own session "systemd" at the kexec: ours must be gone by then.
  hijack.close();
  await notifyBarrier();
  r.ok = true;
  record(r);
  mark('store: 3 fds stored; SIGKILL');
  process.kill(process.pid, 'SIGKILL');
}

async function afterLiveUpdate() {
  r.back = {};
  for (const f of listened) {
    if (f.kind === 'memfd') r.back[f.name] = { content: read(f.file.fd), seals: f.file.getSealsSync() };
    else if (f.kind === 'session' && f.name === DIRECT.fdName) {
      using memfd = f.file.retrieveSync(DIRECT.token);
      r.back[f.name] = { content: read(memfd.fd) };
      f.file.finishSync();
      r.finished = true;
    } else r.back[f.name] = { code: `unexpected ${f.kind}` };
  }
  // Done with them: the next live update starts from an empty store.
  for (const name of Object.keys(r.back)) await removeStoredFds(name);
  await notifyBarrier();
  for (const f of listened) f.file.close();
  r.ok = true;
}
