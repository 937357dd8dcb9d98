// The kernel session name systemd (262+) gives a `LUOSession=` entry, so a
// service can tell its sessions apart by kernel name (and the VM tier can
// check what systemd created).
import { createHash } from 'node:crypto';
import { invalidArgType, invalidArgValue } from '../errors';

/** How many characters of the unit name start the kernel name. */
const UNIT_PREFIX = 13;
/** How many hex digits of the hash follow. */
const HASH_DIGITS = 24;
const MAX = 255;

function validateUnitPart(value: unknown, argName: string): string {
  if (typeof value !== 'string') throw invalidArgType(argName, 'of type string', value);
  if (value.length < 1 || value.length > MAX) throw invalidArgValue(argName, value, `must be 1..${MAX} characters`);
  // systemd's rule for LUOSession= names: ASCII, no whitespace, no ':'.
  if (!/^[\x21-\x7e]+$/.test(value)) throw invalidArgValue(argName, value, 'must be ASCII without whitespace or control characters');
  if (value.includes(':')) throw invalidArgValue(argName, value, 'must not contain ":"');
  return value;
}

/**
 * The kernel session name systemd creates for `LUOSession=name` of `unit`:
 * the first 13 characters of the unit name, '-', then the first 24 hex
 * digits of SHA-256(`unit/name`) cut to 16 bytes with the v4-UUID bits set
 * (byte 6: 0x4X, byte 8: 0b10XXXXXX). It fits the kernel's 63 bytes for
 * any unit and name.
 *
 * @example luoSessionName('luo-demo.service', 'demo') // 'luo-demo.serv-f7b8a692c3ea413a9a50d592'
 */
export function luoSessionName(unit: string, name: string): string {
  validateUnitPart(unit, 'unit');
  validateUnitPart(name, 'name');
  const id = createHash('sha256').update(`${unit}/${name}`).digest().subarray(0, 16);
  id[6] = (id[6]! & 0x0f) | 0x40;
  id[8] = (id[8]! & 0x3f) | 0x80;
  return `${unit.slice(0, UNIT_PREFIX)}-${id.toString('hex').slice(0, HASH_DIGITS)}`;
}
