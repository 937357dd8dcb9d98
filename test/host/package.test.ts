// The published shape: `npm pack` of a clean clone of this checkout's HEAD
// (whose prepack builds the prebuilds), installed into an empty project with
// install scripts disabled and no compiler on PATH (so nothing can compile),
// loads from its prebuild through both `require` and `import`, and its CLI
// runs; arethetypeswrong and publint find nothing wrong with the tarball.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';

const root = path.resolve(__dirname, '../..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-pack-'));
const app = path.join(work, 'app');
let tarball: string;
// A PATH with node, npm and a shell (npx runs bins through sh) and nothing
// else: no gcc, g++, cc, make, python.
const bare = path.join(work, 'bin');
fs.mkdirSync(bare);
for (const tool of ['node', 'npm', 'npx']) fs.symlinkSync(tool === 'node' ? process.execPath : path.join(path.dirname(process.execPath), tool), path.join(bare, tool));
fs.symlinkSync('/bin/sh', path.join(bare, 'sh'));
const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
const inApp = (cmd: string, args: string[]) => run(cmd, args, app, { ...process.env, PATH: bare });

beforeAll(() => {
  const clone = path.join(work, 'clone');
  run('git', ['clone', '--quiet', '--no-hardlinks', root, clone], work);
  // Dev dependencies for prepack and prepare; the addon itself comes from the prebuilds.
  run('npm', ['ci', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], clone);
  tarball = path.join(work, run('npm', ['pack', '--silent', '--pack-destination', work], clone).trim().split('\n').pop()!);
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), '{"name":"app","private":true}');
  inApp('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', tarball]);
}, 30 * 60_000); // the four cross-built prebuilds: cached by source hash, about 13 minutes cold

test('the installed CLI runs from the prebuild: --version, status --json', () => {
  const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  expect(inApp('npx', ['--no-install', 'liveupdate', '--version']).trim()).toBe(version);
  // No LUO device on a development machine: status says so and exits 3, as JSON.
  const r = spawnSync(path.join(bare, 'npx'), ['--no-install', 'liveupdate', 'status', '--json'], { cwd: app, encoding: 'utf8', env: { ...process.env, PATH: bare } });
  expect(JSON.parse(r.stdout)).toMatchObject({ kernel: expect.any(String), device: { path: '/dev/liveupdate' } });
  expect(r.stderr).toBe('');
  expect([0, 3]).toContain(r.status);
});

afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

test('the tarball ships the prebuild, the native sources and the types, not the build tree', () => {
  const pkg = path.join(app, 'node_modules/liveupdate');
  for (const arch of ['x64', 'arm64']) {
    expect(fs.readdirSync(path.join(pkg, `prebuilds/linux-${arch}`)).sort()).toEqual(['liveupdate.glibc.node', 'liveupdate.musl.node']);
  }
  expect(fs.existsSync(path.join(pkg, 'binding.gyp'))).toBe(true);
  expect(fs.existsSync(path.join(pkg, 'native/uapi.h'))).toBe(true);
  expect(fs.existsSync(path.join(pkg, 'dist/index.d.ts'))).toBe(true);
  expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false);
  expect(fs.existsSync(path.join(pkg, 'examples/keep-guest-ram.mjs'))).toBe(true);
});

// The TypeScript sources are not shipped, so maps pointing at them would be
// dead weight (and a "go to definition" into nothing).
test('the tarball has no source maps', () => {
  const files = fs.readdirSync(path.join(app, 'node_modules/liveupdate'), { recursive: true, encoding: 'utf8' });
  expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
});

// Every entry point resolves to types that match its module format, under
// node10, node16 (from CJS and from ESM) and bundler resolution.
test('arethetypeswrong finds no problem', () => {
  const out = run(path.join(root, 'node_modules/.bin/attw'), [tarball, '--format', 'json'], root);
  expect(JSON.parse(out).analysis.problems).toEqual([]);
}, 60_000);

test('publint --strict finds nothing', () => {
  const out = run(path.join(root, 'node_modules/.bin/publint'), ['run', tarball, '--strict'], root);
  expect(out).toMatch(/All good/);
}, 60_000);

test('require() loads the prebuild and works', () => {
  const out = run(process.execPath, ['-e', `
    const lu = require('liveupdate');
    const m = lu.Memfd.createSync('packed', { size: 4096 });
    m.addSealsSync(['grow']);
    console.log(JSON.stringify({
      seals: m.getSealsSync(),
      binary: require('node-gyp-build').path(require('path').dirname(require.resolve('liveupdate/package.json'))),
    }));
    m.close();
  `], app);
  const result = JSON.parse(out);
  expect(result.seals).toEqual(['grow']);
  expect(result.binary).toMatch(/node_modules\/liveupdate\/prebuilds\/linux-x64\/liveupdate\.glibc\.node$/);
});

test('import works too and shares the classes with require()', () => {
  const out = run(process.execPath, ['--input-type=module', '-e', `
    import { Memfd, LiveUpdate, kexec } from 'liveupdate';
    import { runVm } from 'liveupdate/vm';
    import { listenFds, luoSessionName } from 'liveupdate/systemd';
    import { createRequire } from 'node:module';
    const require = createRequire(import.meta.url);
    const cjs = require('liveupdate');
    console.log(JSON.stringify([Memfd === cjs.Memfd, typeof LiveUpdate.openSync, typeof kexec.loadSync, typeof runVm,
      typeof listenFds, luoSessionName === require('liveupdate/systemd').luoSessionName]));
  `], app);
  expect(JSON.parse(out)).toEqual([true, 'function', 'function', 'function', 'function', true]);
});

// What a TypeScript user of the installed tarball compiles: every runtime
// export of every entry point, through `import` (ESM) and `require` (CJS),
// with nodenext resolution, and `using` / `await using` on the owners.
test('a TypeScript consumer type-checks every export, ESM and CJS', () => {
  const specifiers = ['liveupdate', 'liveupdate/vm', 'liveupdate/systemd', 'liveupdate/selftest'];
  const keys = JSON.parse(run(process.execPath, ['-e', `
    console.log(JSON.stringify(${JSON.stringify(specifiers)}.map((s) => Object.keys(require(s)).filter((k) => k !== '__esModule'))));
  `], app)) as string[][];
  const uses = (ns: string, i: number) => keys[i]!.map((k) => `void ${ns}.${k};`).join('\n');
  fs.writeFileSync(path.join(app, 'check.mts'), [
    ...specifiers.map((s, i) => `import * as ns${i} from '${s}';`),
    `import lu, { Memfd, FdSocket, type FdMessage } from 'liveupdate';`,
    ...specifiers.map((_, i) => uses(`ns${i}`, i)),
    `void lu.Memfd.createSync;`,
    `{ using memfd = Memfd.createSync('typed'); const n: string | undefined = memfd.name; void n; }`,
    `async function pair(): Promise<FdMessage> { await using socket = FdSocket.pair()[0]; return socket.receive(); }`,
    `void pair;`,
  ].join('\n'));
  fs.writeFileSync(path.join(app, 'check.cts'), [
    ...specifiers.map((s, i) => `import ns${i} = require('${s}');`),
    ...specifiers.map((_, i) => uses(`ns${i}`, i)),
    `{ using memfd = ns0.Memfd.createSync('typed'); void memfd.fd; }`,
  ].join('\n'));
  const tsc = spawnSync(path.join(root, 'node_modules/.bin/tsc'), [
    '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--lib', 'es2023,esnext.disposable', '--types', 'node', '--typeRoots', path.join(root, 'node_modules/@types'),
    'check.mts', 'check.cts',
  ], { cwd: app, encoding: 'utf8' });
  expect(tsc.stdout + tsc.stderr).toBe(''); // tsc's errors, if any, in the test's failure
  expect(tsc.status).toBe(0);
}, 60_000);
