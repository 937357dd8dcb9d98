// Unit files for a guest image, installed and enabled as `systemctl enable`
// would: the host's systemctl may be older than the guest's systemd, and the
// image is built without booting it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ImageFile } from './disk-image';

const UNIT_DIR = '/etc/systemd/system';

/**
 * The unit files in `dir` as image files under /etc/systemd/system, plus the
 * `<target>.wants/` (and `.requires/`) links their `[Install]` sections ask for.
 */
export function installUnits(dir: string): Record<string, ImageFile> {
  const files: Record<string, ImageFile> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    if (!/\.(service|socket|target|mount|timer|path)$/.test(name)) continue;
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
