// Where build products that are slow to make are kept between runs: the
// same directory the VM tier caches its kernel in (lib/vm/kernel.ts).
import * as os from 'node:os';
import * as path from 'node:path';

/** `$LIVEUPDATE_CACHE_DIR`, else `$XDG_CACHE_HOME/liveupdate`, else `~/.cache/liveupdate`. */
export function cacheDir() {
  if (process.env.LIVEUPDATE_CACHE_DIR) return process.env.LIVEUPDATE_CACHE_DIR;
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'liveupdate');
}
