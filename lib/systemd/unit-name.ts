// Which unit this process runs in, read from its cgroup path: systemd puts
// every unit's processes in a cgroup named after the unit.
import * as fs from 'node:fs';

export interface UnitNameOptions {
  /** The text of a /proc/PID/cgroup file; read from `path` when absent. */
  cgroup?: string;
  /** The file to read; `/proc/self/cgroup` by default. */
  path?: string;
}

// Unit types whose cgroups hold processes (slices only group other units;
// sockets, mounts and swaps run helpers in theirs).
const UNIT = /^[A-Za-z0-9:_.\\@-]+\.(service|scope|socket|mount|swap)$/;

// The systemd hierarchy's line: the unified one ("0::") on cgroup v2 and
// hybrid hosts, "name=systemd" on legacy v1 ones.
function systemdPath(cgroup: string): string | undefined {
  let legacy: string | undefined;
  for (const line of cgroup.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (id === '0' && controllers === '') return path;
    if (controllers === 'name=systemd') legacy = path;
  }
  return legacy;
}

/**
 * The unit named by a cgroup file's text, e.g. "vmm.service" for
 * `0::/system.slice/vmm.service`: the last path component that is a
 * service, scope, socket, mount or swap unit, so a process in a delegated
 * sub-cgroup (`…/vmm.service/worker`) still counts, and a unit of a nested
 * manager (a container's systemd) is that manager's unit. Undefined
 * outside a unit (`0::/`).
 */
export function unitFromCgroup(cgroup: string): string | undefined {
  const path = systemdPath(cgroup);
  if (path === undefined) return undefined;
  const components = path
    .split('/')
    // systemd escapes a component that could clash with a kernel file by a
    // leading '_' (cg_escape); the unit name is what follows.
    .map((c) => (c.startsWith('_') ? c.slice(1) : c));
  for (let i = components.length - 1; i >= 0; i--) if (UNIT.test(components[i]!)) return components[i];
  return undefined;
}

/**
 * The unit this process runs in (from /proc/self/cgroup), e.g.
 * "vmm.service"; undefined outside one, or where /proc is not there.
 * Pass `cgroup` (the file's text) or `path` to read another.
 */
export function unitName(options: UnitNameOptions = {}): string | undefined {
  let text = options.cgroup;
  if (text === undefined) {
    try {
      text = fs.readFileSync(options.path ?? '/proc/self/cgroup', 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw err;
    }
  }
  return unitFromCgroup(text);
}
