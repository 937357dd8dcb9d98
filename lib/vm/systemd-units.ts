// Unit files for a guest image, installed and enabled as `systemctl enable`
// would: the host's systemctl may be older than the guest's systemd, and the
// image is built without booting it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageFile } from './disk-image';

const UNIT_DIR = '/etc/systemd/system';

const UNIT_FILE = /\.(service|socket|target|mount|timer|path)$/;

/**
 * The unit files in `dir` as image files under /etc/systemd/system, plus the
 * `<target>.wants/` (and `.requires/`) links their `[Install]` sections ask
 * for, and the drop-ins of `<unit>.d/*.conf` (which may change units from
 * elsewhere: install those too).
 */
export function installUnits(dir: string): Record<string, ImageFile> {
  const files: Record<string, ImageFile> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const dropIns = path.join(dir, name);
    if (name.endsWith('.d') && UNIT_FILE.test(name.slice(0, -2)) && fs.statSync(dropIns).isDirectory()) {
      for (const conf of fs.readdirSync(dropIns).filter((f) => f.endsWith('.conf'))) {
        files[path.posix.join(UNIT_DIR, name, conf)] = { content: fs.readFileSync(path.join(dropIns, conf), 'utf8') };
      }
      continue;
    }
    if (!UNIT_FILE.test(name)) continue;
    const text = fs.readFileSync(path.join(dir, name), 'utf8');
    const unit = path.posix.join(UNIT_DIR, name);
    files[unit] = { content: text };
    for (const [kind, target] of installTargets(text)) {
      files[path.posix.join(UNIT_DIR, `${target}.${kind}`, name)] = { symlink: unit };
    }
  }
  return files;
}

/** The `WantedBy=`/`RequiredBy=` targets of a unit's `[Install]` section. */
export function installTargets(text: string): Array<['wants' | 'requires', string]> {
  const out: Array<['wants' | 'requires', string]> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    const m = /^(WantedBy|RequiredBy)=(.*)$/.exec(line);
    if (section !== 'Install' || !m) continue;
    for (const target of m[2]!.split(/\s+/).filter(Boolean)) out.push([m[1] === 'WantedBy' ? 'wants' : 'requires', target]);
  }
  return out;
}
