// Units go into the systemd VM's image enabled, as `systemctl enable` would
// do from their [Install] sections.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, test } from 'vitest';
import { installTargets, installUnits } from '../../lib/vm/systemd-units';

test('installTargets reads WantedBy= and RequiredBy= of [Install] only', () => {
  const unit = '[Unit]\nWantedBy=not-this.target\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target  sockets.target\nRequiredBy=x.service\n';
  expect(installTargets(unit)).toEqual([['wants', 'multi-user.target'], ['wants', 'sockets.target'], ['requires', 'x.service']]);
});

test('installUnits puts units in /etc/systemd/system with their .wants links, skipping other files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-units-'));
  fs.writeFileSync(path.join(dir, 'a.service'), '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n');
  fs.writeFileSync(path.join(dir, 'b.socket'), '[Socket]\nListenStream=/run/b\n');
  fs.writeFileSync(path.join(dir, 'README'), 'not a unit');
  expect(installUnits(dir)).toEqual({
    '/etc/systemd/system/a.service': { content: '[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' },
    '/etc/systemd/system/multi-user.target.wants/a.service': { symlink: '/etc/systemd/system/a.service' },
    '/etc/systemd/system/b.socket': { content: '[Socket]\nListenStream=/run/b\n' },
  });
  fs.rmSync(dir, { recursive: true });
});

test('installUnits takes the drop-ins of <unit>.d/*.conf, also for units installed from elsewhere', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'liveupdate-units-'));
  fs.mkdirSync(path.join(dir, 'vmm.service.d'));
  fs.writeFileSync(path.join(dir, 'vmm.service.d', 'test.conf'), '[Service]\nTimeoutStartSec=5min\n');
  fs.writeFileSync(path.join(dir, 'vmm.service.d', 'notes.txt'), 'not a drop-in');
  fs.mkdirSync(path.join(dir, 'stuff.d')); // not named for a unit
  expect(installUnits(dir)).toEqual({
    '/etc/systemd/system/vmm.service.d/test.conf': { content: '[Service]\nTimeoutStartSec=5min\n' },
  });
  fs.rmSync(dir, { recursive: true });
});
