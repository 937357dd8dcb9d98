import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import { type InspectOptionsStylized, inspect } from 'node:util';
import type { Binding, MappingHandle } from './binding';
import { callSync, invalidArgType, invalidArgValue, invalidState, outOfRange } from './errors';
import { validateOptions } from './validate';

/** Options of {@link Memfd.mapSync}. */
export interface MemfdMapOptions {
  /** Where the mapping starts, in bytes: a multiple of the page size; 0 by default. */
  offset?: number;
  /** Bytes to map; by default from `offset` to the end of the file. */
  length?: number;
  /**
   * Map read-write (PROT_WRITE): writes through `buffer` go straight to the
   * memfd. False by default: the mapping is read-only, and writing through
   * a read-only mapping's buffer kills the process with SIGSEGV.
   */
  writable?: boolean;
}

// The seals that forbid a writable shared mapping: mmap(2) fails with EPERM.
const WRITE_SEALS = ['write', 'future-write'] as const;

/**
 * A memfd's contents mapped into memory (mmap(2), MAP_SHARED), from
 * {@link Memfd.mapSync}. `buffer` is the mapping itself, no copy: reads see
 * the file as it is now, and writes through a writable mapping are the
 * file's contents at once.
 *
 * Unmapped by `unmap()` or `using`, or, if dropped without that, when its
 * `buffer` is garbage-collected (safe: the memfd holds the data). The
 * mapping holds its own reference to the file, so it stays valid after the
 * memfd is closed.
 */
export class MemfdMapping implements Disposable {
  /** The mapped length in bytes (the buffer's, until it is unmapped). */
  readonly length: number;
  /** Where in the file the mapping starts. */
  readonly offset: number;
  /** Mapped read-write. */
  readonly writable: boolean;
  readonly #buffer: ArrayBuffer;
  readonly #handle: MappingHandle;
  readonly #binding: Binding;
  #unmapped = false;

  // Private: a mapping only comes from Memfd.mapSync, which checked the seals.
  private constructor(binding: Binding, mapped: { buffer: ArrayBuffer; handle: MappingHandle }, offset: number, writable: boolean) {
    this.#binding = binding;
    this.#buffer = mapped.buffer;
    this.#handle = mapped.handle;
    this.length = mapped.buffer.byteLength;
    this.offset = offset;
    this.writable = writable;
  }

  /** @internal */
  static fromNative(binding: Binding, mapped: { buffer: ArrayBuffer; handle: MappingHandle }, offset: number, writable: boolean): MemfdMapping {
    return new MemfdMapping(binding, mapped, offset, writable);
  }

  /**
   * The mapped bytes, no copy; wrap it in a `Buffer` or typed array to use
   * it. Detached once unmapped: its `byteLength` is 0 and views of it are
   * empty, so nothing reads memory that is gone.
   */
  get buffer(): ArrayBuffer {
    return this.#buffer;
  }

  /** True once unmapped. */
  get unmapped(): boolean {
    return this.#unmapped;
  }

  /**
   * Unmaps (munmap(2)) and detaches `buffer`. Idempotent: a second call does nothing.
   * Await any `fs.read`/`fs.write` on `buffer` first: a call still on the
   * thread pool holds a raw pointer into the memory this frees.
   */
  unmap(): void {
    if (this.#unmapped) return;
    callSync('MUNMAP', {}, () => this.#binding.munmapSync(this.#handle, this.#buffer));
    this.#unmapped = true;
  }

  [Symbol.dispose](): void {
    this.unmap();
  }

  // The default would print the buffer's bytes (all of them, for a big mapping).
  [inspect.custom](depth: number, options: InspectOptionsStylized, show: typeof inspect): string {
    if (depth < 0) return options.stylize('[MemfdMapping]', 'special');
    const fields = { length: this.length, offset: this.offset, writable: this.writable, unmapped: this.#unmapped };
    return `MemfdMapping ${show(fields, options)}`;
  }
}

/**
 * Checks everything that can be checked before mmap(2) and maps.
 * @internal The policy behind {@link Memfd.mapSync}; `fd` is open and `seals` are its seals now.
 */
export function mapMemfd(fd: number, seals: readonly string[], binding: Binding, options: MemfdMapOptions | undefined, label: string): MemfdMapping {
  const { offset = 0, length, writable = false } = validateOptions(options);
  const pageSize = binding.pageSize;
  if (typeof offset !== 'number') throw invalidArgType('options.offset', 'of type number', offset);
  if (!Number.isSafeInteger(offset) || offset < 0) throw outOfRange('options.offset', 'a safe integer >= 0', offset);
  if (offset % pageSize !== 0) throw invalidArgValue('options.offset', offset, `must be a multiple of the page size (${pageSize})`);
  if (length !== undefined) {
    if (typeof length !== 'number') throw invalidArgType('options.length', 'of type number', length);
    if (!Number.isSafeInteger(length) || length < 1 || length > bufferConstants.MAX_LENGTH) {
      throw outOfRange('options.length', `an integer >= 1 and <= ${bufferConstants.MAX_LENGTH}`, length);
    }
  }
  if (typeof writable !== 'boolean') throw invalidArgType('options.writable', 'of type boolean', writable);

  if (!seals.includes('shrink')) {
    throw invalidState(
      `${label} cannot be mapped without the 'shrink' seal: if the file shrank under the mapping, touching the lost pages would kill the process with SIGBUS (add it with addSealsSync(['shrink']))`,
      { fd },
    );
  }
  const writeSeal = WRITE_SEALS.find((s) => seals.includes(s));
  if (writable && writeSeal) {
    throw invalidState(`${label} cannot be mapped writable: it has the '${writeSeal}' seal (map it read-only)`, { fd });
  }

  // The shrink seal makes this size a floor: it cannot drop below it later.
  // A hugetlb memfd maps in huge pages: munmap(2) of the length asked for
  // would fail (EINVAL) and the mapping could never be unmapped. (st_blksize
  // cannot tell: shmem reports the THP size there when THP is on.)
  if (isHugetlb(fd)) throw invalidState(`${label} is a hugetlb memfd: mapSync maps ordinary memfds only`, { fd });
  const size = fs.fstatSync(fd).size;
  if (size === 0) throw invalidState(`${label} is empty: there is nothing to map (mmap(2) cannot map 0 bytes)`, { fd });
  if (offset >= size) throw outOfRange('options.offset', `below the file size (${size})`, offset);
  const mapLength = length ?? size - offset;
  if (offset + mapLength > size) {
    throw outOfRange('options.length', `at most the file size minus options.offset (${size} - ${offset} = ${size - offset})`, length);
  }
  if (mapLength > bufferConstants.MAX_LENGTH) {
    throw invalidState(
      `${label} from offset ${offset} is ${mapLength} bytes, more than an ArrayBuffer holds (${bufferConstants.MAX_LENGTH}): map it in parts with options.offset and options.length`,
      { fd },
    );
  }
  const mapped = callSync('MMAP', { fd }, () => binding.mmapSync(fd, offset, mapLength, writable));
  return MemfdMapping.fromNative(binding, mapped, offset, writable);
}

const HUGETLBFS_MAGIC = 0x958458f6;

function isHugetlb(fd: number): boolean {
  try {
    // statfs(2) through the fd's /proc link: Node has no fstatfs.
    return fs.statfsSync(`/proc/self/fd/${fd}`).type === HUGETLBFS_MAGIC;
  } catch {
    return false; // no /proc: a hugetlb mapping then fails at unmap, with EINVAL
  }
}
