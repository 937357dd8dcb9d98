// What console.log() shows of the fd-owning objects: which fd, which file,
// whether it is still open; never the binding's function table.
import * as fs from 'node:fs';
import { inspect } from 'node:util';
import { describe, expect, test } from 'vitest';
import { LiveUpdate, Memfd, OwnedFd } from '../../lib/index';
import { fakeBinding } from './fake-binding';

describe('util.inspect', () => {
  test('a Memfd shows its fd, its name and that it is open', () => {
    using m = Memfd.createSync('guest-ram');
    expect(inspect(m)).toBe(`Memfd { fd: ${m.fd}, name: 'guest-ram', closed: false }`);
  });

  test('a closed object shows no fd number: it may name another file by now', () => {
    const m = Memfd.createSync('gone');
    m.close();
    expect(inspect(m)).toBe(`Memfd { name: 'gone', closed: true }`);
  });

  test('an adopted memfd is named from /proc', () => {
    using m = Memfd.from(Memfd.createSync('adopted'));
    expect(m.name).toBe('adopted');
    expect(inspect(m)).toContain(`name: 'adopted'`);
  });

  test('a plain OwnedFd shows its fd', () => {
    using o = new OwnedFd(fs.openSync('/dev/null', 'r'));
    expect(inspect(o)).toBe(`OwnedFd { fd: ${o.fd}, closed: false }`);
  });

  test('the device shows its path, a session its name and direction', () => {
    const fake = fakeBinding();
    using lu = LiveUpdate.openSync('/dev/liveupdate', { binding: fake.binding });
    using session = lu.createSessionSync('vmm');
    expect(inspect(lu)).toBe(`LiveUpdate { fd: ${lu.fd}, path: '/dev/liveupdate', closed: false }`);
    expect(inspect(session)).toBe(`Session { fd: ${session.fd}, name: 'vmm', direction: 'outgoing', closed: false }`);
  });

  test('nested past the depth limit, only the class name', () => {
    using m = Memfd.createSync('deep');
    expect(inspect({ a: { b: m } }, { depth: 1 })).toBe('{ a: { b: [Memfd] } }');
  });

  test('the binding never shows', () => {
    using m = Memfd.createSync('quiet');
    expect(inspect(m, { showHidden: true, depth: Infinity })).not.toMatch(/binding|ioctl/);
  });
});
