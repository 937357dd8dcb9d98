// ESM entry of `liveupdate/systemd`: re-exports the CommonJS build, so the
// Session, Memfd and OwnedFd it hands out are the classes of `liveupdate`.
import cjs from '../dist/systemd/index.js';

export const {
  listenFds,
  LISTEN_FDS_START,
  unitName,
  unitFromCgroup,
  notify,
  notifySync,
  NOTIFY_MAX_FDS,
  storeFds,
  storeFdsSync,
  removeStoredFds,
  removeStoredFdsSync,
  validateFdName,
  FDNAME_MAX,
  notifyBarrier,
  DEFAULT_BARRIER_TIMEOUT_MS,
  luoSessionName,
  renewLuoSession,
} = cjs;
