/**
 * Node.js binding for the Linux Live Update Orchestrator (`/dev/liveupdate`):
 * keep memfds in named sessions across a kexec into a new kernel.
 * @packageDocumentation
 */
export { LiveUpdate, DEFAULT_DEVICE_PATH, type LiveUpdateOpenOptions } from './liveupdate';
export { Session, type SessionDirection, type SessionOptions } from './session';
export { OwnedFd, type OwnedFdOptions } from './owned-fd';
export { Memfd, type SealName, type MemfdCreateOptions } from './memfd';
export { MemfdMapping, type MemfdMapOptions } from './memfd-mapping';
export { kexec, type Kexec, type KexecLoadOptions } from './kexec';
export { LiveUpdateError, type Operation, type ErrorContext } from './errors';
export { type Token, type FdLike, SESSION_NAME_MAX_BYTES } from './validate';
export { findHolders, type FileHolder } from './holder';
export { FdSocket, FdServer, type FdMessage, type FdSocketOptions, type FdServerOptions, type FdSocketEvents, type FdServerEvents, type PeerCredentials } from './unix-socket';
export type { WaitOptions } from './wait';
export { LiveUpdateBroker, LiveUpdateClient, BrokerError, type LiveUpdateClientOptions, DEFAULT_BROKER_SOCKET, kernelSessionName, type BrokerOptions, type SessionStore, type SessionInfo, type Peer } from './broker/index';
