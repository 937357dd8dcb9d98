// The Debian mirror the VM tier downloads from is the machine's own, read
// from apt's sources in either format; sample files stand in for /etc/apt.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, test } from 'vitest';
import { debianMirror, hostCodename, parseAptSources, readAptSources } from '../../lib/vm/apt-mirror';

// What these machines have: deb822, with the security archive listed too.
const debianSources = {
  path: '/etc/apt/sources.list.d/debian.sources',
  text: `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`,
};
const noEnv = {};

describe('debianMirror', () => {
  test('takes URIs: of the deb822 stanza for the host release, not the security archive', () => {
    expect(debianMirror([debianSources], 'bookworm', noEnv)).toBe('http://deb.debian.org/debian');
  });

  test('takes a one-line deb entry with options, skipping deb-src, comments and third-party suites', () => {
    const list = {
      path: '/etc/apt/sources.list',
      text: `# deb http://commented.example/debian bookworm main
deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example:3142/debian/ bookworm main contrib
`,
    };
    expect(debianMirror([list], 'bookworm', noEnv)).toBe('http://mirror.example:3142/debian');
  });

  test('skips stanzas with Enabled: no and third-party repositories, and takes suite aliases', () => {
    const files = [
      { path: '/etc/apt/sources.list.d/nodesource.sources', text: 'Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n' },
      { path: '/etc/apt/sources.list.d/a.sources', text: 'Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n' },
      { path: '/etc/apt/sources.list.d/b.sources', text: 'types: deb deb-src\nuris:\n http://proxy.example/debian\nsuites: stable\ncomponents: main non-free\n' },
    ];
    expect(debianMirror(files, 'bookworm', noEnv)).toBe('http://proxy.example/debian');
  });

  test('throws, naming the files and the override, when no Debian archive is listed', () => {
    const files = [{ path: '/etc/apt/sources.list', text: 'deb http://archive.ubuntu.com/ubuntu noble main\n' }];
    expect(() => debianMirror(files, 'bookworm', noEnv)).toThrow(/no Debian archive in apt's sources \(\/etc\/apt\/sources.list\).*LIVEUPDATE_DEBIAN_MIRROR/);
  });

  test('$LIVEUPDATE_DEBIAN_MIRROR wins', () => {
    expect(debianMirror([debianSources], 'bookworm', { LIVEUPDATE_DEBIAN_MIRROR: 'http://local/debian/' })).toBe('http://local/debian');
  });
});

test('parseAptSources reads continuation lines and several suites', () => {
  expect(parseAptSources(debianSources)).toEqual([
    { uris: ['http://deb.debian.org/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
    { uris: ['http://deb.debian.org/debian-security'], suites: ['bookworm-security'], components: ['main'] },
  ]);
});

test('readAptSources reads sources.list and *.list/*.sources only', () => {
  const etc = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-apt-'));
  fs.mkdirSync(path.join(etc, 'sources.list.d'));
  fs.writeFileSync(path.join(etc, 'sources.list'), 'deb http://a/debian bookworm main\n');
  fs.writeFileSync(path.join(etc, 'sources.list.d', 'b.sources'), debianSources.text);
  fs.writeFileSync(path.join(etc, 'sources.list.d', 'c.list.disabled-by-farm'), 'deb http://c/debian bookworm main\n');
  expect(readAptSources(etc).map((f) => path.relative(etc, f.path))).toEqual(['sources.list', 'sources.list.d/b.sources']);
  fs.rmSync(etc, { recursive: true });
});

test('hostCodename reads VERSION_CODENAME from os-release', () => {
  expect(hostCodename('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')).toBe('bookworm');
  expect(hostCodename('ID=debian\n')).toBeUndefined();
});
