// apt-get and apt-cache with their own sources list, package lists and
// archive directory, so looking up and fetching packages of other Debian
// suites never touches the system's apt setup.
import { execFile as execFileCb } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

/** apt on a private directory holding its own `sources.list`, lists and archives. */
export class PrivateApt {
  /**
   * @param dir - the private directory (created as needed).
   * @param sources - one-line `deb URI SUITE COMPONENT...` entries.
   */
  constructor(
    private readonly dir: string,
    private readonly sources: string[],
  ) {}

  #options(): string[] {
    return [
      '-o', `Dir::Etc::sourcelist=${path.join(this.dir, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=/dev/null',
      '-o', `Dir::State::Lists=${path.join(this.dir, 'lists')}`,
      '-o', `Dir::Cache=${path.join(this.dir, 'cache')}`,
      '-o', 'APT::Sandbox::User=root',
      // sid's Release file can be past its Valid-Until date for a while.
      '-o', 'Acquire::Check-Valid-Until=false',
    ];
  }

  /** Writes the sources list and fetches the package lists (`apt-get update`). */
  async update(): Promise<void> {
    fs.mkdirSync(path.join(this.dir, 'lists', 'partial'), { recursive: true });
    fs.mkdirSync(path.join(this.dir, 'cache', 'archives', 'partial'), { recursive: true });
    fs.writeFileSync(path.join(this.dir, 'sources.list'), `${this.sources.join('\n')}\n`);
    await execFile('apt-get', [...this.#options(), '-qq', 'update'], { maxBuffer: 1 << 24 });
  }

  /** Names of packages matching `pattern` (`apt-cache search --names-only`). */
  async search(pattern: string): Promise<string[]> {
    const { stdout } = await execFile('apt-cache', [...this.#options(), 'search', '--names-only', pattern], { maxBuffer: 1 << 24 });
    return stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  }

  /** The version apt would pick for `name`; throws if it has none. */
  async candidate(name: string): Promise<string> {
    const { stdout } = await execFile('apt-cache', [...this.#options(), 'policy', name]);
    const version = /Candidate:\s*(\S+)/.exec(stdout)?.[1];
    if (!version || version === '(none)') throw new Error(`apt has no candidate version of ${name} in ${this.sources.join('; ')}`);
    return version;
  }

  /** Downloads `name=version` into the private archive directory; returns the .deb's path. */
  async download(name: string, version: string): Promise<string> {
    const archives = path.join(this.dir, 'cache', 'archives');
    await execFile('apt-get', [...this.#options(), '-qq', 'download', `${name}=${version}`], { cwd: archives, maxBuffer: 1 << 24 });
    // apt names the file NAME_VERSION_ARCH.deb, with ':' in VERSION as %3a.
    const prefix = `${name}_${version.replace(/:/g, '%3a')}_`;
    const deb = fs.readdirSync(archives).find((f) => f.startsWith(prefix) && f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${name}=${version} left no ${prefix}*.deb in ${archives}`);
    return path.join(archives, deb);
  }
}
