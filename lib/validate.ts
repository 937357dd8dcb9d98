// Argument checks that run before any system call. They throw Node's own
// error codes, so callers can branch on `err.code` as with `fs`.
import { invalidArgType, invalidArgValue, outOfRange } from './errors';

/** A preservation token: a bigint or a safe non-negative integer, below 2^64. */
export type Token = bigint | number;

/** An fd number, or any object that carries one (OwnedFd, Memfd, fs.promises.FileHandle). */
export type FdLike = number | { readonly fd: number };

/** Longest session name in bytes; the kernel's field is 64 bytes with the NUL. */
export const SESSION_NAME_MAX_BYTES = 63;

const U64_MAX = (1n << 64n) - 1n;

export function validateSessionName(name: unknown, argName = 'name'): string {
  if (typeof name !== 'string') throw invalidArgType(argName, 'of type string', name);
  if (name.includes('\0')) throw invalidArgValue(argName, name, 'must not contain NUL bytes');
  if (name.length === 0) throw invalidArgValue(argName, name, 'must not be empty');
  // A UTF-16 unit is at most 3 bytes of UTF-8, so up to 21 units always
  // fit: Buffer.byteLength is a native call, as dear as the ioctl's own
  // crossing under emulation, and most names are short.
  if (name.length > SESSION_NAME_MAX_BYTES / 3) {
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes > SESSION_NAME_MAX_BYTES) {
      throw invalidArgValue(argName, name, `must be at most ${SESSION_NAME_MAX_BYTES} bytes in UTF-8 (it is ${bytes})`);
    }
  }
  if (!name.isWellFormed()) throw invalidArgValue(argName, name, 'must be well-formed Unicode (it has a lone surrogate)');
  return name;
}

/**
 * A token as the addon takes it: a safe non-negative integer as is (making
 * a BigInt of it costs more than the check), anything else through
 * validateToken.
 */
export function tokenArg(token: unknown, argName = 'token'): number | bigint {
  return typeof token === 'number' && Number.isSafeInteger(token) && token >= 0 ? token : validateToken(token, argName);
}

export function validateToken(token: unknown, argName = 'token'): bigint {
  if (typeof token === 'bigint') {
    if (token < 0n || token > U64_MAX) throw outOfRange(argName, '>= 0 and <= 2^64 - 1', token);
    return token;
  }
  if (typeof token === 'number') {
    if (!Number.isSafeInteger(token) || token < 0) {
      throw outOfRange(argName, 'a safe non-negative integer (use a bigint for larger tokens)', token);
    }
    return BigInt(token);
  }
  throw invalidArgType(argName, 'of type bigint or number', token);
}

export function validateFd(fd: unknown, argName = 'fd'): number {
  if (typeof fd !== 'number') throw invalidArgType(argName, 'of type number', fd);
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw outOfRange(argName, 'an integer >= 0 and <= 2147483647', fd);
  return fd;
}

/** Reads the fd out of an FdLike; an object whose fd getter throws (a closed OwnedFd) rethrows. */
export function fdOf(file: unknown, argName = 'file'): number {
  if (typeof file === 'number') return validateFd(file, argName);
  if (typeof file === 'object' && file !== null && 'fd' in file) return validateFd((file as { fd: unknown }).fd, `${argName}.fd`);
  throw invalidArgType(argName, 'a file descriptor number or an object with an fd property', file);
}

/** An options argument: undefined (the defaults) or an object; anything else is ERR_INVALID_ARG_TYPE. */
export function validateOptions<T extends object>(options: T | undefined, argName = 'options'): T {
  if (options === undefined) return {} as T;
  if (typeof options !== 'object' || options === null) throw invalidArgType(argName, 'of type object', options);
  return options;
}

export function validateString(value: unknown, argName: string): string {
  if (typeof value !== 'string') throw invalidArgType(argName, 'of type string', value);
  if (value.includes('\0')) throw invalidArgValue(argName, value, 'must not contain NUL bytes');
  return value;
}
