// Which Debian mirror to fetch packages from: the one this machine's own apt
// uses. Users behind a local mirror or a caching proxy only reach that one.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One apt sources file: its path (for messages) and its text. */
export interface AptSourcesFile {
  path: string;
  text: string;
}

/** One `deb` entry of an apt sources file, in either format. */
export interface AptSource {
  uris: string[];
  suites: string[];
  components: string[];
}

// Debian's suite names that are not a release's codename.
const SUITE_ALIASES = ['oldstable', 'stable', 'testing', 'unstable', 'sid'];

/**
 * The files apt reads: `sources.list` and the `*.list` and `*.sources` files
 * in `sources.list.d` (apt ignores other names, e.g. `*.disabled`).
 */
export function readAptSources(etcApt = '/etc/apt'): AptSourcesFile[] {
  const files = [path.join(etcApt, 'sources.list')];
  const dir = path.join(etcApt, 'sources.list.d');
  if (fs.existsSync(dir)) {
    files.push(...fs.readdirSync(dir).sort().filter((f) => /^[\w.-]+\.(list|sources)$/.test(f)).map((f) => path.join(dir, f)));
  }
  return files.filter((f) => fs.existsSync(f)).map((f) => ({ path: f, text: fs.readFileSync(f, 'utf8') }));
}

/** The enabled `deb` entries of one file: deb822 (`*.sources`) or one-line (`*.list`) format. */
export function parseAptSources(file: AptSourcesFile): AptSource[] {
  return file.path.endsWith('.sources') ? parseDeb822(file.text) : parseOneLine(file.text);
}

function parseOneLine(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    // deb [option=value ...] URI SUITE [COMPONENT ...]
    const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (m) sources.push({ uris: [m[1]!], suites: [m[2]!], components: m[3]!.trim().split(/\s+/).filter(Boolean) });
  }
  return sources;
}

function parseDeb822(text: string): AptSource[] {
  const sources: AptSource[] = [];
  // Stanzas are separated by blank lines; comment lines may sit anywhere.
  const lines = text.split('\n').filter((l) => !l.startsWith('#'));
  for (const stanza of lines.join('\n').split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let key = '';
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line) && key) {
        fields.set(key, `${fields.get(key)} ${line.trim()}`); // continuation line
        continue;
      }
      const m = /^([\w-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      key = m[1]!.toLowerCase();
      fields.set(key, m[2]!.trim());
    }
    const list = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean);
    if (!list('types').includes('deb') || /^(no|false|0)$/i.test(fields.get('enabled') ?? '')) continue;
    sources.push({ uris: list('uris'), suites: list('suites'), components: list('components') });
  }
  return sources;
}

/** VERSION_CODENAME from os-release, e.g. `bookworm`. */
export function hostCodename(osRelease = readIfExists('/etc/os-release') ?? readIfExists('/usr/lib/os-release') ?? ''): string | undefined {
  return /^VERSION_CODENAME=["']?([^"'\n]*)/m.exec(osRelease)?.[1] || undefined;
}

/**
 * The URI of this machine's Debian archive, e.g. `http://deb.debian.org/debian`:
 * `$LIVEUPDATE_DEBIAN_MIRROR` if set, else the first `deb` entry of apt's
 * sources for the host's release (`bookworm`, or a suite alias such as
 * `stable`) with component `main`. Entries for `-security`, `-updates`,
 * `-backports` or third-party suites do not count. Throws when there is none:
 * a hard-coded host would fail behind a mirror or proxy anyway.
 */
export function debianMirror(files: AptSourcesFile[] = readAptSources(), codename = hostCodename(), env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIVEUPDATE_DEBIAN_MIRROR) return env.LIVEUPDATE_DEBIAN_MIRROR.replace(/\/+$/, '');
  const releases = new Set([...SUITE_ALIASES, ...(codename ? [codename] : [])]);
  for (const file of files) {
    for (const source of parseAptSources(file)) {
      if (!source.components.includes('main') || !source.suites.some((s) => releases.has(s))) continue;
      const uri = source.uris.find((u) => /^(https?|file):/.test(u));
      if (uri) return uri.replace(/\/+$/, '');
    }
  }
  throw new Error(
    `no Debian archive in apt's sources (${files.map((f) => f.path).join(', ') || 'none found'}) for ${[...releases].join('/')} main; ` +
      'set LIVEUPDATE_DEBIAN_MIRROR to a Debian mirror URI',
  );
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
