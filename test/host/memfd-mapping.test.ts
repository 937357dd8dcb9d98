// Memfd.mapSync: a memfd mapped into an ArrayBuffer with no copy, on the
// host's own kernel. The GC and worker-thread cases run in child processes
// on the built library (dist/), where --expose-gc and a clean exit can be seen.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { constants as bufferConstants } from 'node:buffer';
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { Memfd, MemfdMapping } from '../../lib/index';
import { defaultBinding } from '../../lib/binding';
import { fakeBinding } from './fake-binding';

const dist = path.resolve(__dirname, '../../dist/index.js');
const PAGE = 4096;

// Lines of /proc/self/maps that map the memfd named `name`.
function mapsOf(name: string): string[] {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes(`/memfd:${name} `));
}

function sealed(name: string, contents: Buffer, seals: Parameters<Memfd['addSealsSync']>[0] = ['shrink']): Memfd {
  const m = Memfd.createSync(name, { size: contents.length });
  fs.writeSync(m.fd, contents, 0, contents.length, 0);
  m.addSealsSync(seals);
  return m;
}

describe('Memfd.mapSync', () => {
  test('maps a shrink-sealed memfd read-only: the buffer is the file, no copy', () => {
    const data = Buffer.alloc(3 * PAGE, 'abc');
    using m = sealed('map-ro', data);
    using mapping = m.mapSync();
    expect(mapping).toBeInstanceOf(MemfdMapping);
    expect(mapping.buffer).toBeInstanceOf(ArrayBuffer);
    expect(mapping.length).toBe(data.length);
    expect(mapping.buffer.byteLength).toBe(data.length);
    expect(Buffer.from(mapping.buffer).equals(data)).toBe(true);
    expect(mapping).toMatchObject({ offset: 0, writable: false, unmapped: false });
    // A write through fs shows in the mapping at once: it is the same pages.
    fs.writeSync(m.fd, Buffer.from('XYZ'), 0, 3, 10);
    expect(Buffer.from(mapping.buffer, 10, 3).toString()).toBe('XYZ');
    const [line] = mapsOf('map-ro');
    expect(line).toMatch(/^[0-9a-f]+-[0-9a-f]+ r--s /); // PROT_READ, MAP_SHARED
  });

  test('writable: writes through the buffer are the file contents (readSync sees them)', () => {
    using m = sealed('map-rw', Buffer.alloc(2 * PAGE));
    using mapping = m.mapSync({ writable: true });
    expect(mapping.writable).toBe(true);
    Buffer.from(mapping.buffer).write('written through the mapping', PAGE + 5);
    const back = Buffer.alloc(27);
    fs.readSync(m.fd, back, 0, back.length, PAGE + 5);
    expect(back.toString()).toBe('written through the mapping');
    expect(mapsOf('map-rw')[0]).toMatch(/ rw-s /);
  });

  test('offset and length map a window of the file', () => {
    const data = Buffer.alloc(4 * PAGE);
    for (let i = 0; i < data.length; i++) data[i] = (i / PAGE) | 0;
    using m = sealed('map-window', data);
    using a = m.mapSync({ offset: 2 * PAGE });
    expect(a.length).toBe(2 * PAGE);
    expect(a.offset).toBe(2 * PAGE);
    expect(new Uint8Array(a.buffer)[0]).toBe(2);
    using b = m.mapSync({ offset: PAGE, length: 100 });
    expect(b.buffer.byteLength).toBe(100);
    expect([...new Uint8Array(b.buffer)].every((x) => x === 1)).toBe(true);
    using c = m.mapSync({ length: 4 * PAGE });
    expect(c.length).toBe(4 * PAGE);
  });

  test('refused without the shrink seal: the message says why (SIGBUS) and nothing is mapped', () => {
    using m = Memfd.createSync('map-unsealed', { size: PAGE });
    m.addSealsSync(['grow', 'write']);
    expect(() => m.mapSync()).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_STATE', fd: m.fd, message: expect.stringMatching(/'shrink' seal.*SIGBUS/) }),
    );
    expect(mapsOf('map-unsealed')).toEqual([]);
  });

  test('writable is refused before mmap when the memfd is sealed against writes; read-only is fine', () => {
    for (const seal of ['write', 'future-write'] as const) {
      using m = sealed(`map-${seal}`, Buffer.alloc(PAGE), ['shrink', seal]);
      expect(() => m.mapSync({ writable: true })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_STATE', message: expect.stringContaining(`'${seal}' seal`) }),
      );
      using ro = m.mapSync();
      expect(ro.length).toBe(PAGE);
    }
  });

  test('an empty memfd is refused: mmap cannot map 0 bytes', () => {
    using m = Memfd.createSync('map-empty');
    m.addSealsSync(['shrink']);
    expect(() => m.mapSync()).toThrow(expect.objectContaining({ code: 'ERR_INVALID_STATE', message: expect.stringContaining('is empty') }));
  });

  test('a closed memfd is refused like any other call', () => {
    const m = sealed('map-closed', Buffer.alloc(PAGE));
    m.close();
    expect(() => m.mapSync()).toThrow(expect.objectContaining({ code: 'ERR_CLOSED' }));
  });

  test('bad arguments are refused with Node-style codes before any syscall', () => {
    using m = sealed('map-args', Buffer.alloc(2 * PAGE));
    const bad: [unknown, string, RegExp?][] = [
      ['nope', 'ERR_INVALID_ARG_TYPE'],
      [null, 'ERR_INVALID_ARG_TYPE'],
      [{ offset: '0' }, 'ERR_INVALID_ARG_TYPE'],
      [{ offset: -PAGE }, 'ERR_OUT_OF_RANGE'],
      [{ offset: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ offset: 100 }, 'ERR_INVALID_ARG_VALUE', /multiple of the page size \(4096\)/],
      [{ offset: 2 * PAGE }, 'ERR_OUT_OF_RANGE', /below the file size \(8192\)/],
      [{ length: 0 }, 'ERR_OUT_OF_RANGE'],
      [{ length: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ length: NaN }, 'ERR_OUT_OF_RANGE'],
      [{ length: 10n }, 'ERR_INVALID_ARG_TYPE'],
      [{ length: bufferConstants.MAX_LENGTH + 1 }, 'ERR_OUT_OF_RANGE'],
      [{ length: 2 * PAGE + 1 }, 'ERR_OUT_OF_RANGE', /at most the file size minus options.offset/],
      [{ offset: PAGE, length: PAGE + 1 }, 'ERR_OUT_OF_RANGE'],
      [{ writable: 1 }, 'ERR_INVALID_ARG_TYPE'],
    ];
    for (const [options, code, message] of bad) {
      expect(() => m.mapSync(options as never), inspect(options)).toThrow(expect.objectContaining({ code, ...(message ? { message: expect.stringMatching(message) } : {}) }));
    }
    expect(mapsOf('map-args')).toEqual([]);
  });

  test('an mmap failure is a LiveUpdateError naming the syscall, the operation and the errno', () => {
    // A stand-in addon whose mmap fails; the seals say 'shrink' (2), the size is the real file's.
    const { binding, calls } = fakeBinding({ getSeals: () => 2 });
    using m = sealed('map-fake', Buffer.alloc(PAGE));
    const fd = fs.openSync(`/proc/self/fd/${m.fd}`, 'r+');
    const fake = Memfd.from(fd, { binding });
    try {
      expect(() => fake.mapSync()).toThrow(
        expect.objectContaining({ name: 'LiveUpdateError', code: 'ENODEV', errno: -19, syscall: 'mmap', operation: 'MMAP', fd }),
      );
      expect(fake.mapSync.bind(fake)).toThrow(/^ENODEV: fd \d+ is a file that cannot be mapped, mmap MMAP$/);
      expect(calls.filter((c) => c.call === 'mmap').map((c) => c.args)).toEqual([[fd, 0, PAGE, false], [fd, 0, PAGE, false]]);
    } finally {
      fake.close(); // the stand-in's close
      fs.closeSync(fd);
    }
  });
});

describe('MemfdMapping.unmap', () => {
  test('unmaps, detaches the buffer (byteLength 0, views empty), and is idempotent', () => {
    using m = sealed('unmap-once', Buffer.alloc(PAGE, 7));
    const mapping = m.mapSync();
    const view = new Uint8Array(mapping.buffer);
    expect(mapsOf('unmap-once')).toHaveLength(1);
    mapping.unmap();
    expect(mapping.unmapped).toBe(true);
    expect(mapping.buffer.byteLength).toBe(0);
    expect(view.length).toBe(0);
    expect(view[0]).toBeUndefined(); // reads nothing instead of faulting
    expect(mapsOf('unmap-once')).toEqual([]);
    mapping.unmap();
    mapping[Symbol.dispose]();
    expect(mapping.length).toBe(PAGE); // what was mapped, for the record
  });

  test('`using` unmaps at the end of the block', () => {
    using m = sealed('unmap-using', Buffer.alloc(PAGE));
    let buffer: ArrayBuffer;
    {
      using mapping = m.mapSync();
      buffer = mapping.buffer;
    }
    expect(buffer.byteLength).toBe(0);
    expect(mapsOf('unmap-using')).toEqual([]);
  });

  // Node 20 copies an external ArrayBuffer on transfer; a runtime that moves
  // it instead detaches ours, and unmap() must then leave the memory to its
  // new owner (the finalizer unmaps it once no buffer holds it). Either way,
  // what the transfer produced stays readable after unmap().
  test('a transferred buffer stays readable after unmap(), whether the transfer copied or moved it', () => {
    using m = sealed('unmap-moved', Buffer.alloc(PAGE, 5));
    const mapping = m.mapSync();
    const moved = structuredClone(mapping.buffer, { transfer: [mapping.buffer] });
    mapping.unmap();
    expect(mapping.buffer.byteLength).toBe(0);
    expect(new Uint8Array(moved)[PAGE - 1]).toBe(5);
  });

  test('the mapping stays valid after the memfd is closed, until unmapped', () => {
    const data = Buffer.alloc(2 * PAGE, 'kept');
    const m = sealed('after-close', data);
    const mapping = m.mapSync();
    m.close();
    expect(Buffer.from(mapping.buffer).equals(data)).toBe(true);
    expect(mapsOf('after-close')).toHaveLength(1);
    mapping.unmap();
    expect(mapsOf('after-close')).toEqual([]);
  });

  test('inspect shows what is mapped, not the bytes', () => {
    using m = sealed('inspect-map', Buffer.alloc(PAGE));
    using mapping = m.mapSync();
    expect(inspect(mapping)).toBe('MemfdMapping { length: 4096, offset: 0, writable: false, unmapped: false }');
  });
});

describe('lifetime', () => {
  // In a child: maps, drops the mapping (and/or its buffer) unmapped, collects; prints /proc/self/maps lines.
  function inChild(body: string): string {
    const script = `
      const { Memfd } = require(${JSON.stringify(dist)});
      const fs = require('node:fs');
      const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:gc-')).length;
      const tick = () => new Promise((r) => setImmediate(r));
      const memfd = Memfd.createSync('gc-map', { size: 1 << 20 });
      memfd.addSealsSync(['shrink']);
      (async () => { ${body} })().catch((e) => { console.error(e); process.exit(1); });
    `;
    return execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }).trim();
  }

  test('a mapping dropped without unmap() is unmapped when its buffer is collected', () => {
    const out = inChild(`
      (() => { for (let i = 0; i < 3; i++) memfd.mapSync(); })();
      const before = maps();
      globalThis.gc(); await tick(); globalThis.gc(); await tick();
      console.log(before, maps());
    `);
    expect(out).toBe('3 0');
  });

  test('a buffer kept after its MemfdMapping is dropped keeps the memory mapped until it goes too', () => {
    const out = inChild(`
      let kept = (() => memfd.mapSync().buffer)();
      globalThis.gc(); await tick(); globalThis.gc(); await tick();
      if (new Uint8Array(kept)[0] !== 0) throw new Error("bad read"); // would fault if it had been unmapped
      const whileKept = maps();
      kept = undefined;
      globalThis.gc(); await tick(); globalThis.gc(); await tick();
      console.log(whileKept, maps());
    `);
    expect(out).toBe('1 0');
  });

  test('unmap() then collection unmaps once: a new mapping at the same address survives the old one\'s finalizer', () => {
    const out = inChild(`
      let a = memfd.mapSync();
      a.unmap();
      const b = memfd.mapSync(); // the kernel is free to reuse a's address
      a = undefined;
      globalThis.gc(); await tick(); globalThis.gc(); await tick();
      console.log(maps(), new Uint8Array(b.buffer).length);
      b.unmap();
    `);
    expect(out).toBe('1 1048576');
  });

  test('in a worker thread: loads, maps, reads, unmaps, and the worker exits cleanly; its dropped mappings go with it', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const fs = require('node:fs');
      const maps = () => fs.readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('/memfd:worker-')).length;
      const worker = new Worker(\`
        const { parentPort } = require('node:worker_threads');
        const { Memfd } = require(${JSON.stringify(dist)});
        const fs = require('node:fs');
        const m = Memfd.createSync('worker-map', { size: 8192 });
        fs.writeSync(m.fd, Buffer.from('from a worker'), 0, 13, 4096);
        m.addSealsSync(['shrink']);
        const mapping = m.mapSync({ offset: 4096 });
        const text = Buffer.from(mapping.buffer, 0, 13).toString();
        mapping.unmap();
        globalThis.leaked = m.mapSync(); // never unmapped: the worker's teardown must do it
        m.close();
        parentPort.postMessage({ text, length: mapping.buffer.byteLength });
      \`, { eval: true });
      let message;
      worker.on('message', (m) => { message = m; console.log('mapped while running:', maps()); });
      worker.on('error', (e) => { console.error(e); process.exit(1); });
      worker.on('exit', (code) => setImmediate(() => console.log(JSON.stringify({ code, ...message, after: maps() }))));
    `;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split('\n');
    expect(JSON.parse(out.at(-1)!)).toEqual({ code: 0, text: 'from a worker', length: 0, after: 0 });
  });
});

describe('the addon’s munmapSync', () => {
  test('after the unmap, an empty ArrayBuffer of someone else’s is not taken for the mapping’s (both have no data)', () => {
    using m = Memfd.createSync('foreign', { size: PAGE });
    m.addSealsSync(['shrink']);
    const native = defaultBinding();
    const mapped = native.mmapSync(m.fd, 0, PAGE, false);
    native.munmapSync(mapped.handle, mapped.buffer);
    const foreign = new ArrayBuffer(0);
    native.munmapSync(mapped.handle, foreign);
    expect(() => new Uint8Array(foreign)).not.toThrow(); // a view of a detached buffer is a TypeError
  });
});
