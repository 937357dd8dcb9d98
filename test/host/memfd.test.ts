// Memfds and their seals, on the host's own kernel.
import * as fs from 'node:fs';
import { describe, expect, test } from 'vitest';
import { Memfd, OwnedFd } from '../../lib/index';

describe('Memfd.createSync', () => {
  test('makes a close-on-exec, sealable memfd of the requested size', () => {
    using m = Memfd.createSync('guest-ram', { size: 1n << 20n });
    expect(fs.fstatSync(m.fd).size).toBe(1 << 20);
    expect(fs.readlinkSync(`/proc/self/fd/${m.fd}`)).toBe('/memfd:guest-ram (deleted)');
    const flags = Number.parseInt(/flags:\s+(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${m.fd}`, 'utf8'))![1]!, 8);
    expect(flags & 0o2000000).not.toBe(0); // O_CLOEXEC
    expect(m.getSealsSync()).toEqual([]);
  });

  test('without allowSealing the memfd is sealed against seals', () => {
    using m = Memfd.createSync('fixed', { allowSealing: false });
    expect(m.getSealsSync()).toEqual(['seal']);
    expect(() => m.addSealsSync(['write'])).toThrow(expect.objectContaining({ code: 'EPERM', operation: 'F_ADD_SEALS', syscall: 'fcntl' }));
  });

  test('the Promise form makes the same memfd', async () => {
    using m = await Memfd.create('async', { size: 4096 });
    expect(fs.fstatSync(m.fd).size).toBe(4096);
  });
});

describe('seals', () => {
  test('are added and read back by name, sync and Promise forms', async () => {
    using m = Memfd.createSync('sealed', { size: 4096 });
    m.addSealsSync(['shrink', 'grow']);
    await m.addSeals(['future-write']);
    expect(m.getSealsSync()).toEqual(['shrink', 'grow', 'future-write']);
    expect(await m.getSeals()).toEqual(['shrink', 'grow', 'future-write']);
    expect(() => fs.ftruncateSync(m.fd, 0)).toThrow(expect.objectContaining({ code: 'EPERM' }));
  });

  test('once sealed with "seal", adding more is EPERM with a meaning', () => {
    using m = Memfd.createSync('final');
    m.addSealsSync(['seal']);
    const err = (() => {
      try {
        m.addSealsSync(['write']);
      } catch (e) {
        return e as Error & { code: string };
      }
    })();
    expect(err?.code).toBe('EPERM');
    expect(err?.message).toMatch(new RegExp(`^EPERM: fd ${m.fd} is sealed against new seals`));
  });
});

describe('Memfd.from', () => {
  test('adopts an OwnedFd, which is consumed', () => {
    const owned = new OwnedFd(Memfd.createSync('adopt').detach());
    const fd = owned.fd;
    using m = Memfd.from(owned);
    expect(owned.closed).toBe(true);
    expect(m.fd).toBe(fd);
    expect(m.getSealsSync()).toEqual([]);
  });

  test('refuses a file that is not a memfd and leaves it open', () => {
    const fd = fs.openSync('/dev/null', 'r');
    try {
      expect(() => Memfd.from(fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringMatching(/is not a memfd/) }));
      expect(() => fs.fstatSync(fd)).not.toThrow();
    } finally {
      fs.closeSync(fd);
    }
  });
});
