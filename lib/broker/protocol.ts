// The broker's wire format: one JSON object per SOCK_SEQPACKET message,
// session fds attached to the replies that hand them out.
import { nodeCrypto } from '../unix-socket';

/** Largest message either side sends or accepts. */
export const MAX_MESSAGE = 16 * 1024;

/** Longest client-chosen session name, in UTF-8 bytes. */
export const MAX_CLIENT_NAME = 255;

export type Request =
  | { id: number; op: 'create' | 'retrieve' | 'release'; name: string }
  | { id: number; op: 'adopt'; name: string } // the session fd rides along
  | { id: number; op: 'retrieved'; name: string } // the client has the session fd a retrieve handed it
  | { id: number; op: 'list'; offset?: number } // a page of the list from `offset`; the reply's `next` says where the rest starts
  | { id: number; op: 'ready'; failed?: string } // failed: why the client could not prepare
  | { id: number; op: 'kexec'; kernel: string; cmdline?: string; force?: boolean; timeoutMs?: number };

export interface SessionInfo {
  name: string;
  kernelName: string;
  state: 'outgoing' | 'incoming' | 'handed-out';
}

export type Reply =
  | { id: number; ok: true; session?: SessionInfo; sessions?: SessionInfo[]; next?: number; notReady?: Peer[] }
  | { id: number | null; ok: false; error: { code: string; message: string; notReady?: Peer[] } };

/** Sent by the broker when a live update is coming; answer with `ready`. */
export interface PrepareEvent {
  event: 'prepare';
}

export interface Peer {
  pid: number;
  uid: number;
  /** Why it is not ready, when it said so (its prepare handler failed). */
  reason?: string;
}

/**
 * The kernel session name for a client's session: its uid, then a hash of
 * uid and name, so names from different uids never meet and any client name
 * fits the kernel's 63 bytes (systemd hashes for the same reason).
 */
export function kernelSessionName(uid: number, clientName: string): string {
  const digest = nodeCrypto().createHash('sha256').update(`${uid}\0${clientName}`).digest('base64url').slice(0, 27);
  return `luod-${uid}-${digest}`;
}

/** The broker's own record session, holding who owns which kernel session. */
export const RECORD_SESSION = 'luod-record';

export class ProtocolError extends Error {
  /** The request's id, when it got as far as having one: the refusal answers it. */
  id?: number;
  constructor(
    message: string,
    readonly code = 'EPROTO',
  ) {
    super(message);
  }
}

export function validateClientName(name: unknown): string {
  if (typeof name !== 'string') throw new ProtocolError('name must be a string', 'EINVAL');
  const bytes = Buffer.byteLength(name);
  // A lone surrogate would be encoded (and hashed) as U+FFFD: two different
  // names would map to one kernel session.
  if (bytes === 0 || bytes > MAX_CLIENT_NAME || name.includes('\0') || !name.isWellFormed()) {
    throw new ProtocolError(`name must be 1..${MAX_CLIENT_NAME} bytes of well-formed UTF-8 without NUL`, 'EINVAL');
  }
  return name;
}

/** Parses a request; anything malformed is a ProtocolError (never a crash). */
export function parseRequest(payload: Buffer): Request {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError('the message is not JSON');
  }
  if (typeof value !== 'object' || value === null) throw new ProtocolError('the message is not a JSON object');
  const r = value as Record<string, unknown>;
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id)) throw new ProtocolError('id must be an integer');
  try {
    return parseOp(r as Record<string, unknown> & { id: number });
  } catch (err) {
    if (err instanceof ProtocolError) err.id = r.id;
    throw err;
  }
}

function parseOp(r: Record<string, unknown> & { id: number }): Request {
  switch (r.op) {
    case 'create':
    case 'retrieve':
    case 'retrieved':
    case 'release':
    case 'adopt':
      return { id: r.id, op: r.op, name: validateClientName(r.name) };
    case 'list':
      if (r.offset !== undefined && (typeof r.offset !== 'number' || !Number.isSafeInteger(r.offset) || r.offset < 0)) {
        throw new ProtocolError('offset must be a non-negative integer', 'EINVAL');
      }
      return r.offset === undefined ? { id: r.id, op: 'list' } : { id: r.id, op: 'list', offset: r.offset };
    case 'ready':
      if (r.failed !== undefined && typeof r.failed !== 'string') throw new ProtocolError('failed must be a string', 'EINVAL');
      return r.failed === undefined ? { id: r.id, op: 'ready' } : { id: r.id, op: 'ready', failed: r.failed.slice(0, 1024) };
    case 'kexec':
      if (typeof r.kernel !== 'string' || !r.kernel) throw new ProtocolError('kernel must be a path', 'EINVAL');
      if (r.cmdline !== undefined && typeof r.cmdline !== 'string') throw new ProtocolError('cmdline must be a string', 'EINVAL');
      return {
        id: r.id,
        op: 'kexec',
        kernel: r.kernel,
        cmdline: r.cmdline as string | undefined,
        force: r.force === true,
        timeoutMs: typeof r.timeoutMs === 'number' ? r.timeoutMs : undefined,
      };
    default:
      throw new ProtocolError(`unknown op ${JSON.stringify(r.op)}`);
  }
}

export function encode(message: Reply | PrepareEvent | Request): Buffer {
  return Buffer.from(JSON.stringify(message));
}
