import * as fs from 'node:fs';
import type { Binding } from './binding';
import { defaultBinding } from './binding';
import { callAsync, callSync, invalidArgType, invalidArgValue, outOfRange } from './errors';
import { type MemfdMapOptions, MemfdMapping, mapMemfd } from './memfd-mapping';
import { OwnedFd, type OwnedFdOptions, adoptFd, adoptableFd } from './owned-fd';
import type { FdLike } from './validate';
import { validateOptions, validateString } from './validate';

/** A memfd seal, named after its F_SEAL_* flag. */
export type SealName = 'seal' | 'shrink' | 'grow' | 'write' | 'future-write' | 'exec';

const SEAL_FLAGS: Record<SealName, keyof Binding['constants']> = {
  seal: 'F_SEAL_SEAL',
  shrink: 'F_SEAL_SHRINK',
  grow: 'F_SEAL_GROW',
  write: 'F_SEAL_WRITE',
  'future-write': 'F_SEAL_FUTURE_WRITE',
  exec: 'F_SEAL_EXEC',
};
const SEAL_NAMES = Object.keys(SEAL_FLAGS) as SealName[];

export interface MemfdCreateOptions extends OwnedFdOptions {
  /** Initial size in bytes (ftruncate); 0 by default. */
  size?: number | bigint;
  /** Allow seals to be added later (MFD_ALLOW_SEALING); true by default. */
  allowSealing?: boolean;
}

/**
 * An anonymous shared-memory file (memfd_create(2)): the kind of file LUO
 * preserves today. Read and write it with `fs` on `memfd.fd`; its contents,
 * size, file position and seals survive a live update.
 */
export class Memfd extends OwnedFd {
  // The name given to memfd_create: known when made here, else looked up
  // in /proc on first use (undefined: not yet; null: the kernel kept none).
  #name: string | null | undefined;

  /**
   * The name given to memfd_create(2), as /proc shows it (`memfd:NAME`).
   * Undefined for a memfd retrieved after a live update: the kernel
   * recreates it without one.
   */
  get name(): string | undefined {
    if (this.#name === undefined && !this.closed) this.#name = memfdName(this.fd);
    return this.#name ?? undefined;
  }

  /** Creates a memfd (close-on-exec, sealable unless `allowSealing: false`). */
  static createSync(name: string, options: MemfdCreateOptions = {}): Memfd {
    const { flags, size, binding } = memfdArgs(name, options);
    const fd = callSync('MEMFD_CREATE', {}, () => binding.memfdCreateSync(name, flags));
    return Memfd.#sized(fd, name, size, binding);
  }

  /** Promise form of {@link Memfd.createSync}. */
  static async create(name: string, options: MemfdCreateOptions = {}): Promise<Memfd> {
    const { flags, size, binding } = memfdArgs(name, options);
    const fd = await callAsync('MEMFD_CREATE', {}, binding, () => binding.memfdCreate(name, flags));
    return Memfd.#sized(fd, name, size, binding);
  }

  /**
   * Adopts a memfd, e.g. one retrieved from a session. An OwnedFd is
   * consumed (detached); a number becomes owned by the new Memfd.
   * Throws ERR_INVALID_ARG_VALUE, owning nothing, if the fd is not a memfd;
   * ERR_INVALID_ARG_TYPE for other objects with an `fd` (a FileHandle still
   * owns its fd and would close it behind the Memfd's back).
   */
  static from(file: FdLike, options: OwnedFdOptions = {}): Memfd {
    const fd = adoptableFd(file);
    const binding = validateOptions(options).binding ?? (file instanceof OwnedFd ? (file as Memfd).binding : defaultBinding());
    if (!isMemfd(fd, binding)) throw invalidArgValue('file', file, `is not a memfd (fd ${fd})`);
    const name = memfdName(fd);
    adoptFd(file as number | OwnedFd);
    const memfd = new Memfd(fd, { binding }, { label: memfdLabel(fd, name) });
    memfd.#name = name;
    return memfd;
  }

  /** Adds seals (F_ADD_SEALS). Seals can only be added, never removed. */
  addSealsSync(seals: readonly SealName[]): void {
    const bits = sealBits(seals, this.binding);
    const fd = this.fd;
    callSync('F_ADD_SEALS', { fd }, () => this.binding.addSealsSync(fd, bits));
  }

  /** Promise form of {@link Memfd.addSealsSync}. */
  addSeals(seals: readonly SealName[]): Promise<void> {
    const bits = sealBits(seals, this.binding);
    return this.withFd((fd) => callAsync('F_ADD_SEALS', { fd }, this.binding, () => this.binding.addSeals(fd, bits)));
  }

  /** The seals in force (F_GET_SEALS), in a fixed order. */
  getSealsSync(): SealName[] {
    const fd = this.fd;
    return sealNames(callSync('F_GET_SEALS', { fd }, () => this.binding.getSealsSync(fd)), this.binding);
  }

  /** Promise form of {@link Memfd.getSealsSync}. */
  async getSeals(): Promise<SealName[]> {
    const bits = await this.withFd((fd) => callAsync('F_GET_SEALS', { fd }, this.binding, () => this.binding.getSeals(fd)));
    return sealNames(bits, this.binding);
  }

  /**
   * Maps the memfd into memory (mmap(2), MAP_SHARED): `mapping.buffer` is
   * the file's bytes with no copy. The whole file by default, read-only
   * unless `writable: true`.
   *
   * Refused with ERR_INVALID_STATE unless the memfd has the `'shrink'` seal
   * (a mapping of a file that shrinks kills the process with SIGBUS when it
   * touches the lost pages), for a writable mapping of a memfd sealed
   * against writes, and for an empty memfd. `offset` must be a multiple of
   * the page size and `offset + length` at most the file size
   * (ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE). The mapping stays valid after
   * the memfd is closed; unmap it with `unmap()` or `using`.
   *
   * @example
   * ```ts
   * memfd.addSealsSync(['shrink']);
   * using mapping = memfd.mapSync();
   * const bytes = new Uint8Array(mapping.buffer);
   * ```
   */
  mapSync(options?: MemfdMapOptions): MemfdMapping {
    const fd = this.fd;
    return mapMemfd(fd, this.getSealsSync(), this.binding, options, memfdLabel(fd, this.name ?? null));
  }

  /** @internal */
  protected override inspectFields(): Record<string, unknown> {
    return { name: this.name, ...super.inspectFields() };
  }

  static #sized(fd: number, name: string, size: number, binding: Binding): Memfd {
    const memfd = new Memfd(fd, { binding }, { label: memfdLabel(fd, name) });
    memfd.#name = name;
    if (size > 0) {
      try {
        fs.ftruncateSync(fd, size);
      } catch (err) {
        memfd.close();
        throw err;
      }
    }
    return memfd;
  }
}

function memfdArgs(name: string, options: MemfdCreateOptions) {
  validateString(name, 'name');
  if (typeof options !== 'object' || options === null) throw invalidArgType('options', 'of type object', options);
  const { size = 0, allowSealing = true } = options;
  if (typeof size !== 'number' && typeof size !== 'bigint') throw invalidArgType('options.size', 'of type number or bigint', size);
  if (typeof size === 'number' ? !Number.isSafeInteger(size) || size < 0 : size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw outOfRange('options.size', `an integer >= 0 and <= ${Number.MAX_SAFE_INTEGER}`, size);
  }
  if (typeof allowSealing !== 'boolean') throw invalidArgType('options.allowSealing', 'of type boolean', allowSealing);
  const binding = options.binding ?? defaultBinding();
  return { flags: allowSealing ? binding.constants.MFD_ALLOW_SEALING : 0, size: Number(size), binding };
}

function sealBits(seals: readonly SealName[], binding: Binding): number {
  if (!Array.isArray(seals)) throw invalidArgType('seals', 'an array of seal names', seals);
  let bits = 0;
  for (const seal of seals as readonly SealName[]) {
    if (!SEAL_NAMES.includes(seal)) {
      throw invalidArgValue('seals', seal, `must be one of ${SEAL_NAMES.map((s) => `'${s}'`).join(', ')}`);
    }
    bits |= binding.constants[SEAL_FLAGS[seal]];
  }
  return bits;
}

function sealNames(bits: number, binding: Binding): SealName[] {
  return SEAL_NAMES.filter((name) => (bits & binding.constants[SEAL_FLAGS[name]]) !== 0);
}

// Warnings and errors name a memfd as its owner knows it.
function memfdLabel(fd: number, name: string | null): string {
  return name === null ? `memfd ${fd}` : `memfd ${JSON.stringify(name)}`;
}

// The kernel names a memfd's file `memfd:NAME`; /proc shows it as
// `/memfd:NAME (deleted)`. A memfd recreated after a live update is
// `/ (deleted)`: it has no name. Anything unreadable counts as no name:
// a name is for people, never worth failing over.
function memfdName(fd: number): string | null {
  try {
    return /^\/memfd:(.*?)(?: \(deleted\))?$/s.exec(fs.readlinkSync(`/proc/self/fd/${fd}`))?.[1] ?? null;
  } catch {
    return null;
  }
}

// Only shmem files (memfds, and tmpfs files) answer F_GET_SEALS. The name
// cannot tell: a memfd retrieved after a live update is `/ (deleted)`, not
// `/memfd:NAME`, because the kernel recreates it without a name.
function isMemfd(fd: number, binding: Binding): boolean {
  try {
    binding.getSealsSync(fd);
    return true;
  } catch {
    return false;
  }
}
