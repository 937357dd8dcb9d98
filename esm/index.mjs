// ESM entry: re-exports the CommonJS build, so `import` and `require`
// share one copy of every class (instanceof works across both).
import cjs from '../dist/index.js';

export const {
  LiveUpdate,
  DEFAULT_DEVICE_PATH,
  Session,
  OwnedFd,
  Memfd,
  kexec,
  createKexec,
  LiveUpdateError,
  SESSION_NAME_MAX_BYTES,
  findHolders,
  FdSocket,
  FdServer,
  LiveUpdateBroker,
  LiveUpdateClient,
  BrokerError,
  DEFAULT_BROKER_SOCKET,
  kernelSessionName,
} = cjs;
