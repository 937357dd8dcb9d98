import * as path from 'node:path';
import type { Binding } from '../types/binding';

export type { Binding, MappingHandle } from '../types/binding';

let loaded: Binding | undefined;

/**
 * The compiled addon: the prebuild for this platform when the package ships
 * one, else the local node-gyp build. Loaded on first use, so code that is
 * handed a binding (tests, other runtimes) never needs the real one.
 */
export function defaultBinding(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('node-gyp-build')(path.join(__dirname, '..')) as Binding;
  return loaded;
}
