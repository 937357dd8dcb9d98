// The systemd VM's root filesystem is cached per package versions: a new
// systemd (or udev, dbus, kexec-tools) in sid makes a new one.
import { expect, test } from 'vitest';
import { ROOTFS_PACKAGES, cacheKey } from '../../lib/vm/rootfs';

const versions = { systemd: '262.1-1', 'systemd-sysv': '262.1-1', udev: '262.1-1', dbus: '1.16.2-8', 'kexec-tools': '1:2.0.32-3' };

test('the key names the systemd version and changes with any package version or the recipe', () => {
  const key = cacheKey(versions, 1);
  expect(key).toMatch(/^sid-systemd-262\.1-1-[0-9a-f]{12}$/);
  expect(cacheKey({ ...versions }, 1)).toBe(key);
  expect(cacheKey({ ...versions, dbus: '1.16.2-9' }, 1)).not.toBe(key);
  expect(cacheKey({ ...versions, systemd: '263-1' }, 1)).toMatch(/^sid-systemd-263-1-/);
  expect(cacheKey(versions, 2)).not.toBe(key);
});

test('the key does not depend on the order the versions were looked up in', () => {
  const reversed = Object.fromEntries(Object.entries(versions).reverse());
  expect(cacheKey(reversed, 1)).toBe(cacheKey(versions, 1));
});

test('systemd, its sysv init, udev, dbus and kexec-tools go in', () => {
  expect([...ROOTFS_PACKAGES].sort()).toEqual(['dbus', 'kexec-tools', 'systemd', 'systemd-sysv', 'udev']);
});
