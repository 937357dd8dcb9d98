/**
 * LUO on systemd hosts: the fds systemd hands a service (its fd store:
 * sessions and memfds kept across restarts and `systemctl kexec`),
 * sd_notify to push them there, and the names systemd gives LUOSession=
 * sessions.
 * @packageDocumentation
 */
export { listenFds, LISTEN_FDS_START, type ListenedFd, type ListenFdsOptions } from './listen-fds';
export { unitName, unitFromCgroup, type UnitNameOptions } from './unit-name';
export { notify, notifySync, NOTIFY_MAX_FDS, type NotifyState, type NotifyOptions } from './notify';
export { storeFds, storeFdsSync, removeStoredFds, removeStoredFdsSync, validateFdName, FDNAME_MAX, type StoreFdsOptions } from './fd-store';
export { notifyBarrier, DEFAULT_BARRIER_TIMEOUT_MS, type NotifyBarrierOptions } from './barrier';
export { luoSessionName } from './luo-session-name';
export { renewLuoSession, type RenewLuoSessionOptions } from './renew-session';
