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
    ['a name with a lone surrogate', '{"id":1,"op":"create","name":"vm\\ud800"}', 'EINVAL'],
    ['a list offset that is not a count', '{"id":1,"op":"list","offset":-1}', 'EINVAL'],
    ['a ready whose failure is not text', '{"id":1,"op":"ready","failed":{}}', 'EINVAL'],
  ])('%s is refused with %s', (_, text, code) => {
    expect(() => parseRequest(Buffer.from(text))).toThrow(expect.objectContaining({ code }));
  });

  test('a refusal answers the request it refuses, once the request has an id', () => {
    expect(() => parseRequest(Buffer.from('{"id":9,"op":"create","name":""}'))).toThrow(expect.objectContaining({ id: 9, code: 'EINVAL' }));
  });

  test('names differing in a lone surrogate would have hashed alike; they are refused instead', () => {
    expect(kernelSessionName(1000, 'a\ud800')).toBe(kernelSessionName(1000, 'a\udfff')); // why: both encode as U+FFFD
    expect(() => parseRequest(Buffer.from(JSON.stringify({ id: 1, op: 'create', name: 'a\ud800' })))).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  test('good requests parse', () => {
    expect(parseRequest(Buffer.from('{"id":7,"op":"retrieve","name":"ram"}'))).toEqual({ id: 7, op: 'retrieve', name: 'ram' });
    expect(parseRequest(Buffer.from('{"id":8,"op":"kexec","kernel":"/boot/k","force":true}'))).toMatchObject({ op: 'kexec', kernel: '/boot/k', force: true });
  });
});
