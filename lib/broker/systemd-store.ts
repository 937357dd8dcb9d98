import { notifyBarrier } from '../systemd/barrier';
import { removeStoredFdsSync, storeFdsSync } from '../systemd/fd-store';
import type { Memfd } from '../memfd';
import type { Session } from '../session';
import type { SessionStore } from './daemon';

/**
 * The broker's sessions in systemd's fd store (the unit needs
 * FileDescriptorStoreMax= and FileDescriptorStorePreserve=yes): `systemctl
 * kexec` stops the broker, systemd-shutdown preserves what the store
 * holds, and the next boot hands the sessions back in LISTEN_FDS under the
 * same FDNAME (their kernel names). Undefined outside systemd
 * (no $NOTIFY_SOCKET): nothing could be stored.
 */
export function systemdSessionStore(env: NodeJS.ProcessEnv = process.env): SessionStore | undefined {
  if (!env.NOTIFY_SOCKET) return undefined;
  const max = Number(env.FDSTORE); // systemd 254+: FileDescriptorStoreMax=
  return {
    capacity: Number.isSafeInteger(max) && max > 0 ? max : undefined,
    keep: (name: string, file: Session | Memfd) => void storeFdsSync(name, [file], { env }),
    drop: (name: string) => void removeStoredFdsSync(name, { env }),
    flush: async () => void (await notifyBarrier({ env })),
  };
}
