// The broker's wire format and naming, on the host; the broker itself runs
// on a real kernel in the VM tier (test/vm/broker.test.ts).
import { describe, expect, test } from 'vitest';
import { MAX_CLIENT_NAME, kernelSessionName } from '../../lib/broker/index';
import { parseRequest } from '../../lib/broker/protocol';

describe('kernel session names', () => {
  test('carry the uid, fit the kernel, and differ per uid for the same client name', () => {
    const a = kernelSessionName(1000, 'ram');
    const b = kernelSessionName(1001, 'ram');
    expect(a).toMatch(/^luod-1000-[\w-]{27}$/);
    expect(b).toMatch(/^luod-1001-/);
    expect(a).not.toBe(b);
    expect(Buffer.byteLength(kernelSessionName(4294967294, 'é'.repeat(127)))).toBeLessThanOrEqual(63);
  });

  test('are stable: the broker after a live update finds the same names', () => {
    expect(kernelSessionName(1000, 'ram')).toBe(kernelSessionName(1000, 'ram'));
  });
});

describe('requests', () => {
  test.each([
    ['not JSON', 'nope', 'EPROTO'],
    ['not an object', '[1]', 'EPROTO'],
    ['no id', '{"op":"list"}', 'EPROTO'],
    ['an unknown op', '{"id":1,"op":"steal"}', 'EPROTO'],
    ['an empty name', '{"id":1,"op":"create","name":""}', 'EINVAL'],
    ['a name with NUL', '{"id":1,"op":"create","name":"a\\u0000b"}', 'EINVAL'],
    ['a name too long', JSON.stringify({ id: 1, op: 'create', name: 'x'.repeat(MAX_CLIENT_NAME + 1) }), 'EINVAL'],
    ['kexec without a kernel', '{"id":1,"op":"kexec"}', 'EINVAL'],
  ])('%s is refused with %s', (_, text, code) => {
    expect(() => parseRequest(Buffer.from(text))).toThrow(expect.objectContaining({ code }));
  });

  test('good requests parse', () => {
    expect(parseRequest(Buffer.from('{"id":7,"op":"retrieve","name":"ram"}'))).toEqual({ id: 7, op: 'retrieve', name: 'ram' });
    expect(parseRequest(Buffer.from('{"id":8,"op":"kexec","kernel":"/boot/k","force":true}'))).toMatchObject({ op: 'kexec', kernel: '/boot/k', force: true });
  });
});
