/**
 * The live update broker ("luod"): one process owns /dev/liveupdate and
 * hands sessions to other processes over a UNIX socket.
 * @packageDocumentation
 */
export { LiveUpdateBroker, DEFAULT_BROKER_SOCKET, type BrokerOptions, type SessionStore } from './daemon';
export { LiveUpdateClient, BrokerError, type LiveUpdateClientOptions } from './client';
export { kernelSessionName, RECORD_SESSION, MAX_MESSAGE, MAX_CLIENT_NAME, type SessionInfo, type Peer } from './protocol';
