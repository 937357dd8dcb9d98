import type * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type * as net from 'node:net';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { type Binding, defaultBinding } from './binding';
import { callSync, closedError, invalidArgType, invalidArgValue, invalidState, outOfRange } from './errors';
import { OwnedFd, type OwnedFdOptions, adoptFd, adoptableFd, duplicateFd } from './owned-fd';
import { type FdLike, fdOf, validateOptions, validateString } from './validate';
import { type WaitOptions, validateWait, waitFor } from './wait';

// node:net and node:crypto are loaded when first needed, not with the
// library: a process that only restores sessions uses neither, and they
// were a third of what `require('liveupdate')` cost (host: 19.5 → 14.9 ms;
// in the bench's emulated guest, a process loading the library 936 → 831
// ms, medians of 5, Node's own start 414).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeNet = (): typeof net => require('node:net') as typeof net;
/** @internal node:crypto, loaded on first use (the broker's session names need it too). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const nodeCrypto = (): typeof crypto => require('node:crypto') as typeof crypto;

/** One message: a payload and the fds that came with it, now owned by the receiver. */
export interface FdMessage {
  payload: Buffer;
  fds: OwnedFd[];
}

/** Who is at the other end of a UNIX socket (SO_PEERCRED, as of connect()). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups (SO_PEERGROUPS). */
  groups: number[];
}

export interface FdSocketOptions extends OwnedFdOptions {
  /** Largest payload accepted; a longer message is an error. 64 KiB by default, 16 MiB at most. */
  maxPayload?: number;
}

/**
 * The events of an {@link FdSocket}, so that `on('message', (m) => …)` is
 * typed and a misspelt event name is a compile error.
 */
export interface FdSocketEvents {
  /** A message arrived; its fds are now the listener's to close. Emitted only while not paused. */
  message: [message: FdMessage];
  /** The peer closed its end; no more messages will come. */
  end: [];
  /** A failure no pending {@link FdSocket.receive} was there to take (a bad frame, a too-long payload, a failed sendmsg). */
  error: [err: Error];
  /** Every send that was queued has gone to the kernel (or failed). */
  drain: [];
  /** {@link FdSocket.close} ran. */
  close: [];
  /** Node's own: a listener is being added. */
  newListener: [event: string | symbol, listener: (...args: any[]) => void];
  /** Node's own: a listener was removed. */
  removeListener: [event: string | symbol, listener: (...args: any[]) => void];
}

/** The events of an {@link FdServer}. */
export interface FdServerEvents {
  /** A client connected: its socket, now the listener's to close. */
  connection: [socket: FdSocket];
  /** accept() failed (EMFILE…); the server keeps listening. */
  error: [err: Error];
  /** {@link FdServer.close} ran. */
  close: [];
  /** Node's own: a listener is being added. */
  newListener: [event: string | symbol, listener: (...args: any[]) => void];
  /** Node's own: a listener was removed. */
  removeListener: [event: string | symbol, listener: (...args: any[]) => void];
}

const DEFAULT_MAX_PAYLOAD = 64 * 1024;
/**
 * The largest `maxPayload`: 16 MiB. No SEQPACKET message can be larger
 * than the sender's socket buffer (net.core.wmem_max, 208 KiB by default),
 * and a stream's frames are buffered whole in memory.
 */
export const MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024;

type Unix = Binding['unix'];

interface Pending {
  /** What goes on the wire: the payload, or for stream sockets a frame. */
  wire: Buffer;
  /** Bytes of `wire` already sent (a stream socket may take a frame in parts). */
  offset: number;
  /** Our own copies, taken at send(): the caller may close its fds at once. */
  fds: OwnedFd[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface Waiter {
  resolve: (message: FdMessage) => void;
  reject: (err: unknown) => void;
}

// On stream sockets each message is a frame: u32 payload length, u32 fd
// count (both big-endian), payload. The fds ride on the write that starts
// the frame; the kernel never delivers them together with data of a later
// write, so they belong to the last frame that starts in the read that
// brought them.
const FRAME_HEADER = 8;

/**
 * A UNIX socket that carries file descriptors (SCM_RIGHTS) with each
 * message, for handing LUO session fds and memfds between processes.
 * SOCK_SEQPACKET (what {@link FdSocket.pair}, {@link FdSocket.connect} and
 * {@link FdServer.listen} make) keeps message boundaries itself; a
 * SOCK_STREAM socket (one taken over from `net` with {@link FdSocket.from})
 * carries framed messages, so both ends must be FdSockets. Reading is on demand: messages are taken from the kernel only
 * while someone waits in {@link FdSocket.receive} or listens for `message`;
 * until then they, and their fds, stay in the kernel, which closes them if
 * the socket is closed unread. Nothing blocks the event loop.
 *
 * Events ({@link FdSocketEvents}): `message` (an {@link FdMessage}), `end`
 * (the peer closed), `error`, `drain` (every queued send went to the
 * kernel), `close`.
 */
export class FdSocket extends EventEmitter<FdSocketEvents> implements Disposable {
  readonly #owned: OwnedFd;
  readonly #unix: Unix;
  readonly #binding: Binding;
  readonly #maxPayload: number;
  readonly #poller: InstanceType<Unix['Poller']>;
  readonly #sendQueue: Pending[] = [];
  readonly #waiters: Waiter[] = [];
  #ended = false;
  #paused = false;
  /** Messages read but not yet asked for (stream sockets read several at once). */
  readonly #ready: FdMessage[] = [];
  // Stream reassembly: unparsed bytes, their absolute stream offset, where
  // the frame walk stands, and fds waiting for the frame they start.
  #inbuf: Buffer = Buffer.alloc(0);
  #inbufAt = 0;
  #walkAt = 0;
  readonly #fdsAt = new Map<number, OwnedFd[]>();

  /** `seqpacket` or `stream`: how messages are delimited. */
  readonly kind: 'seqpacket' | 'stream';

  /** Wraps a connected UNIX socket fd (SOCK_SEQPACKET or SOCK_STREAM); an OwnedFd is consumed. */
  constructor(file: FdLike, options: FdSocketOptions = {}) {
    super();
    const fd = adoptableFd(file);
    this.#binding = validateOptions(options).binding ?? defaultBinding();
    this.#unix = this.#binding.unix;
    const kind = callSync('SO_PEERCRED', { fd }, () => this.#unix.socketType(fd));
    if (!kind) throw invalidArgValue('file', file, `is not a UNIX stream or seqpacket socket (fd ${fd})`);
    this.kind = kind;
    this.#maxPayload = validateMaxPayload(options);
    this.#poller = new this.#unix.Poller(fd, (readable, writable, hangup) => this.#onReady(readable, writable, hangup));
    this.#owned = new OwnedFd(adoptFd(file as number | OwnedFd), { binding: this.#binding }, { label: `fd socket ${fd}` });
    this.on('newListener', (event) => {
      if (event !== 'message') return;
      queueMicrotask(() => this.#emitReady());
    });
  }

  /** Two connected sockets, e.g. one for a child process (pass `pair[1].fd` in its stdio). */
  static pair(options: FdSocketOptions = {}): [FdSocket, FdSocket] {
    validateMaxPayload(validateOptions(options));
    const unix = (options.binding ?? defaultBinding()).unix;
    const [a, b] = callSync('SOCKETPAIR', {}, () => unix.socketPair());
    return [new FdSocket(a, options), new FdSocket(b, options)];
  }

  /**
   * Takes over a connected `net.Socket` on a UNIX path (or from a `net`
   * server's 'connection') before anything was read from it: its fd moves
   * into the FdSocket and the net.Socket is destroyed. The peer must be an
   * FdSocket too (messages are framed). libuv would otherwise read the
   * stream itself and drop the fds that come with it.
   */
  static from(socket: net.Socket, options: FdSocketOptions = {}): FdSocket {
    const fd = (socket as unknown as { _handle?: { fd?: number } })?._handle?.fd;
    if (!(socket instanceof nodeNet().Socket) || typeof fd !== 'number' || fd < 0) {
      throw invalidArgType('socket', 'a connected net.Socket on a UNIX socket', socket);
    }
    validateOptions(options);
    if (socket.readableLength > 0 || socket.bytesRead > 0) {
      throw invalidState('hand a net.Socket over before reading from it: what it already read would be lost', { code: 'ERR_INVALID_STATE' });
    }
    const unix = (options.binding ?? defaultBinding()).unix;
    socket.pause();
    const copy = callSync('SOCKETPAIR', { fd }, () => unix.dup(fd));
    let taken: FdSocket;
    try {
      taken = new FdSocket(copy, options);
    } catch (err) {
      (options.binding ?? defaultBinding()).closeSync(copy);
      throw err;
    }
    socket.destroy();
    return taken;
  }

  /** Connects to an {@link FdServer} (or any SOCK_SEQPACKET listener) at `path`. */
  static connect(path: string, options: FdSocketOptions = {}): FdSocket {
    validateString(path, 'path');
    const unix = (validateOptions(options).binding ?? defaultBinding()).unix;
    return new FdSocket(callSync('CONNECT', { path }, () => unix.connect(path)), options);
  }

  /** Messages send() queued that the kernel has not taken yet (its buffer is full). */
  get pendingSends(): number {
    return this.#sendQueue.length;
  }

  /**
   * Stops taking messages from the kernel until {@link FdSocket.resume}:
   * they wait there with their fds, and a peer that keeps sending is held
   * back by the kernel's buffer. A server uses it while a client is not
   * reading its replies.
   */
  pause(): void {
    this.#paused = true;
    this.#updatePolling();
  }

  /** Takes messages again after {@link FdSocket.pause}. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#emitReady();
  }

  /** The socket's fd. Throws ERR_CLOSED once closed. */
  get fd(): number {
    return this.#owned.fd;
  }

  get closed(): boolean {
    return this.#owned.closed;
  }

  /**
   * Sends one message with `fds` attached (they stay open here; the peer
   * gets its own). The payload must not be empty. Resolves once the kernel
   * has taken the message.
   *
   * The fds are duplicated at once, so the caller may close its own before
   * this settles. When the kernel's buffer is full the message waits in a
   * queue ({@link FdSocket.pendingSends}; `drain` when it empties).
   * Rejects with the sendmsg error (`EPIPE` once the peer is gone), or
   * `ERR_CLOSED` if the socket is closed first.
   *
   * @param payload at least one byte; a string is sent as UTF-8
   * @param fds files to pass along (numbers, `{ fd }` objects, OwnedFds)
   */
  send(payload: Buffer | string, fds: readonly FdLike[] = []): Promise<void> {
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (!Buffer.isBuffer(data)) throw invalidArgType('payload', 'a Buffer or string', payload);
    if (data.length === 0) throw outOfRange('payload.length', '>= 1 (a message carries at least one byte)', 0);
    if (!Array.isArray(fds)) throw invalidArgType('fds', 'an array of file descriptors', fds);
    const numbers = fds.map((f, i) => fdOf(f, `fds[${i}]`));
    this.#owned.fd; // throws when closed
    // Duplicate now: a queued send must never pick up a number that was
    // closed and reused meanwhile (it could be someone else's file).
    const copies: OwnedFd[] = [];
    try {
      for (const n of numbers) copies.push(duplicateFd(n, this.#binding, 'SENDMSG'));
    } catch (err) {
      for (const c of copies) c.close();
      throw err;
    }
    const release = () => copies.forEach((c) => c.close());
    let wire = data;
    if (this.kind === 'stream') {
      const header = Buffer.alloc(FRAME_HEADER);
      header.writeUInt32BE(data.length, 0);
      header.writeUInt32BE(copies.length, 4);
      wire = Buffer.concat([header, data]);
    }
    return new Promise<void>((resolve, reject) => {
      this.#sendQueue.push({ wire, offset: 0, fds: copies, resolve, reject });
      this.#flush();
    }).finally(release);
  }

  /**
   * The next message, with its fds now owned by the caller (close them, or
   * adopt them with `Memfd.from` or `new Session`). Messages are taken from
   * the kernel only while a receive() waits (or a `message` listener is
   * attached), in order.
   *
   * Rejects with `ERR_SOCKET_CLOSED` when the peer hangs up first,
   * `ERR_CLOSED` when this socket is closed, `ERR_MESSAGE_TOO_LARGE` or
   * `ERR_FDS_TRUNCATED` for a message that broke the limits, `ABORT_ERR`
   * when `options.signal` aborts and `ETIMEDOUT` when `options.timeoutMs`
   * passes; a message that comes after those waits for the next receive.
   */
  receive(options: WaitOptions = {}): Promise<FdMessage> {
    if (this.#owned.closed) return Promise.reject(closedError('fd socket', 'ERR_CLOSED'));
    let wait: WaitOptions;
    try {
      wait = validateWait(options);
    } catch (err) {
      return Promise.reject(err);
    }
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#ended) return Promise.reject(endError());
    return waitFor('FdSocket.receive', wait, (resolve, reject) => {
      const waiter = { resolve, reject };
      this.#waiters.push(waiter);
      this.#updatePolling();
      return () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        this.#updatePolling();
      };
    });
  }

  /** The peer's pid, uid and gid, from the kernel (SO_PEERCRED). */
  peerCredentials(): PeerCredentials {
    const fd = this.fd;
    return callSync('SO_PEERCRED', { fd }, () => this.#unix.peerCredentials(fd));
  }

  /** Closes the socket; pending sends and receives reject. Idempotent. */
  close(): void {
    if (this.#owned.closed) return;
    this.#poller.close();
    this.#owned.close();
    const err = closedError('fd socket', 'ERR_CLOSED');
    for (const p of this.#sendQueue.splice(0)) p.reject(err);
    for (const w of this.#waiters.splice(0)) w.reject(err);
    for (const m of this.#ready.splice(0)) for (const f of m.fds) f.close();
    for (const fds of this.#fdsAt.values()) for (const f of fds) f.close();
    this.#fdsAt.clear();
    this.emit('close');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #flush(): void {
    const hadQueued = this.#sendQueue.length > 0;
    while (this.#sendQueue.length > 0 && !this.#owned.closed) {
      const next = this.#sendQueue[0]!;
      let sent: number;
      try {
        const fds = next.offset === 0 ? next.fds.map((f) => f.fd) : [];
        const chunk = next.wire.subarray(next.offset);
        sent = callSync('SENDMSG', { fd: this.#owned.fd }, () => this.#unix.send(this.#owned.fd, chunk, fds));
      } catch (err) {
        this.#sendQueue.shift();
        next.reject(err);
        if (next.offset > 0) this.#fail(err); // a stream cut mid-frame cannot go on
        continue;
      }
      if (sent < 0) break; // socket buffer full: wait until writable
      next.offset += sent;
      if (next.offset < next.wire.length) continue; // the rest of a stream frame
      this.#sendQueue.shift();
      next.resolve();
    }
    if (hadQueued && this.#sendQueue.length === 0) this.emit('drain'); // sent or failed: nothing is held any more
    this.#updatePolling();
  }

  #demand(): boolean {
    return !this.#paused && (this.#waiters.length > 0 || this.listenerCount('message') > 0);
  }

  #emitReady(): void {
    while (!this.#paused && this.#ready.length > 0 && this.listenerCount('message') > 0) this.emit('message', this.#ready.shift()!);
    this.#updatePolling();
  }

  #updatePolling(): void {
    if (this.#owned.closed) return;
    const read = !this.#ended && this.#demand();
    const write = this.#sendQueue.length > 0;
    if (read || write) this.#poller.start(read, write);
    else this.#poller.stop();
  }

  #onReady(readable: boolean, writable: boolean, hangup: boolean): void {
    if (writable) this.#flush();
    if (readable || hangup) this.#read();
    this.#updatePolling();
  }

  #read(): void {
    while (!this.#owned.closed && !this.#ended && this.#demand() && this.#ready.length === 0) {
      const fd = this.#owned.fd;
      let raw: ReturnType<Unix['receive']>;
      try {
        raw = callSync('RECVMSG', { fd }, () => this.#unix.receive(fd, this.kind === 'stream' ? 64 * 1024 : this.#maxPayload));
      } catch (err) {
        // A peer that closed with our messages unread resets the connection: it is gone all the same.
        if ((err as { code?: string }).code !== 'ECONNRESET') {
          this.#fail(err);
          return;
        }
        raw = { payload: Buffer.alloc(0), fds: [], eof: true, truncated: false, fdsTruncated: false };
      }
      if (!raw) return;
      if (raw.eof) {
        this.#ended = true;
        for (const w of this.#waiters.splice(0)) w.reject(endError());
        this.emit('end');
        return;
      }
      const fds = raw.fds.map((n) => new OwnedFd(n, { binding: this.#binding }));
      if (raw.fdsTruncated || (this.kind === 'seqpacket' && raw.truncated)) {
        for (const f of fds) f.close();
        this.#fail(
          invalidState(
            raw.fdsTruncated
              ? 'a message arrived with more fds than could be received (MSG_CTRUNC); those that arrived were closed'
              : `a message was longer than maxPayload (${this.#maxPayload} bytes) and was dropped with its fds`,
            { code: raw.fdsTruncated ? 'ERR_FDS_TRUNCATED' : 'ERR_MESSAGE_TOO_LARGE' },
          ),
        );
        if (this.kind === 'stream') this.close(); // the stream lost its place
        continue;
      }
      if (this.kind === 'seqpacket') this.#deliver({ payload: raw.payload, fds });
      else this.#reassemble(raw.payload, fds);
    }
  }

  #deliver(message: FdMessage): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(message);
    else if (!this.#paused && this.listenerCount('message') > 0) this.emit('message', message);
    else this.#ready.push(message);
  }

  #reassemble(chunk: Buffer, fds: OwnedFd[]): void {
    const chunkAt = this.#inbufAt + this.#inbuf.length;
    this.#inbuf = this.#inbuf.length ? Buffer.concat([this.#inbuf, chunk]) : chunk;
    const end = this.#inbufAt + this.#inbuf.length;
    // Walk the frame starts this chunk reaches; fds go to the last one in it.
    let lastStart = -1;
    let at = this.#walkAt;
    while (at < end) {
      if (at >= chunkAt) lastStart = at;
      if (at + FRAME_HEADER > end) break;
      at += FRAME_HEADER + this.#inbuf.readUInt32BE(at - this.#inbufAt);
    }
    this.#walkAt = at;
    if (fds.length > 0) {
      if (lastStart < 0) {
        for (const f of fds) f.close();
        this.#fail(invalidState('fds arrived without a message to go with them', { code: 'ERR_FDS_TRUNCATED' }));
      } else this.#fdsAt.set(lastStart, fds);
    }
    while (this.#inbuf.length >= FRAME_HEADER) {
      const length = this.#inbuf.readUInt32BE(0);
      const count = this.#inbuf.readUInt32BE(4);
      if (length > this.#maxPayload) {
        this.#fail(invalidState(`a message was longer than maxPayload (${this.#maxPayload} bytes)`, { code: 'ERR_MESSAGE_TOO_LARGE' }));
        this.close(); // a stream cannot skip a frame it will not buffer
        return;
      }
      if (this.#inbuf.length < FRAME_HEADER + length) return;
      const frameFds = this.#fdsAt.get(this.#inbufAt) ?? [];
      this.#fdsAt.delete(this.#inbufAt);
      const payload = Buffer.from(this.#inbuf.subarray(FRAME_HEADER, FRAME_HEADER + length));
      this.#inbuf = this.#inbuf.subarray(FRAME_HEADER + length);
      this.#inbufAt += FRAME_HEADER + length;
      if (frameFds.length !== count) {
        for (const f of frameFds) f.close();
        this.#fail(invalidState(`a message announced ${count} fds but ${frameFds.length} arrived; they were closed`, { code: 'ERR_FDS_TRUNCATED' }));
        continue;
      }
      this.#deliver({ payload, fds: frameFds });
    }
  }

  #fail(err: unknown): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.reject(err);
    else this.emit('error', err as Error); // callSync and invalidState throw nothing but Errors
  }
}

function validateMaxPayload({ maxPayload = DEFAULT_MAX_PAYLOAD }: FdSocketOptions): number {
  if (!Number.isSafeInteger(maxPayload) || maxPayload < 1 || maxPayload > MAX_PAYLOAD_LIMIT) {
    throw outOfRange('options.maxPayload', `an integer from 1 to ${MAX_PAYLOAD_LIMIT} (16 MiB)`, maxPayload);
  }
  return maxPayload;
}

function endError() {
  return invalidState('the peer closed the socket', { code: 'ERR_SOCKET_CLOSED' });
}

export interface FdServerOptions extends FdSocketOptions {
  /** Permission bits of the socket file; 0o660 by default. */
  mode?: number;
  /** Owner and group of the socket file (chown); unchanged by default. */
  uid?: number;
  gid?: number;
  backlog?: number;
}

/**
 * A listening UNIX SOCK_SEQPACKET socket at a path. Emits `connection`
 * with an {@link FdSocket} per client; `peerCredentials()` tells who it is.
 */
export class FdServer extends EventEmitter<FdServerEvents> implements Disposable {
  readonly path: string;
  readonly #owned: OwnedFd;
  readonly #unix: Unix;
  readonly #poller: InstanceType<Unix['Poller']>;
  readonly #options: FdServerOptions;
  /** Whether close() removes the socket file: not when systemd made the socket. */
  readonly #ownsPath: boolean;

  private constructor(path: string, fd: number, binding: Binding, options: FdServerOptions, ownsPath = true) {
    super();
    this.path = path;
    this.#ownsPath = ownsPath;
    this.#unix = binding.unix;
    this.#options = { ...options, binding };
    this.#owned = new OwnedFd(fd, { binding }, { label: `fd server ${path}` });
    this.#poller = new this.#unix.Poller(fd, () => this.#accept());
    this.#poller.start(true, false);
    // Keep accept() errors (EMFILE…) from being unhandled 'error' events.
    this.on('error', () => {});
  }

  /**
   * Listens at `path`. A stale socket file left by a dead server is
   * replaced; a live one is EADDRINUSE.
   *
   * The socket appears at `path` only with its `mode` and owner already
   * set: it is bound under a private name, changed, then linked into
   * place (so nobody connects through looser permissions meanwhile). A
   * directory that others may write without the sticky bit is refused
   * (ERR_INVALID_ARG_VALUE): they could swap the file between those steps.
   */
  static listen(path: string, options: FdServerOptions = {}): FdServer {
    validateString(path, 'path');
    const binding = validateOptions(options).binding ?? defaultBinding();
    const dir = nodePath.dirname(nodePath.resolve(path));
    const st = fs.statSync(dir);
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0 /* no sticky bit */) {
      throw invalidArgValue('path', path, `is in ${dir}, which others may write (mode ${(st.mode & 0o7777).toString(8)}, no sticky bit); use a directory only its owner can write`);
    }
    removeStaleSocket(path, binding);
    const temp = nodePath.join(dir, `.${nodePath.basename(path)}.${process.pid}.${nodeCrypto().randomBytes(6).toString('hex')}`);
    const fd = callSync('LISTEN', { path }, () => binding.unix.listen(temp, options.backlog ?? 64));
    try {
      fs.chmodSync(temp, options.mode ?? 0o660);
      if (options.uid !== undefined || options.gid !== undefined) fs.chownSync(temp, options.uid ?? -1, options.gid ?? -1);
      try {
        fs.linkSync(temp, path); // unlike rename, never replaces a live server's socket
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
        throw callSync('LISTEN', { path }, () => {
          throw Object.assign(new Error('EADDRINUSE'), { code: 'EADDRINUSE', errno: -os.constants.errno.EADDRINUSE, syscall: 'bind' });
        });
      }
    } catch (err) {
      binding.closeSync(fd);
      throw err;
    } finally {
      fs.rmSync(temp, { force: true });
    }
    return new FdServer(path, fd, binding, options);
  }

  /**
   * Adopts a listening SOCK_SEQPACKET socket made by someone else: systemd's
   * socket activation (`ListenSequentialPacket=`, see `listenFds()` in
   * `liveupdate/systemd`). An OwnedFd is consumed. Its mode and owner are
   * whatever its maker set; close() leaves its file in place, since the
   * socket outlives this process. `path` only names it in messages.
   */
  static fromListening(file: FdLike, options: Omit<FdServerOptions, 'mode' | 'uid' | 'gid' | 'backlog'> & { path?: string } = {}): FdServer {
    const fd = adoptableFd(file);
    const binding = options.binding ?? defaultBinding();
    if (callSync('ACCEPT', { fd }, () => binding.unix.socketType(fd)) !== 'seqpacket') {
      throw invalidArgValue('file', file, `is not a UNIX SOCK_SEQPACKET socket (fd ${fd}); use ListenSequentialPacket=`);
    }
    const { path = `socket fd ${fd}`, ...rest } = options;
    return new FdServer(path, adoptFd(file as number | OwnedFd), binding, rest, false);
  }

  /**
   * Takes over a listening `net.Server` on a UNIX path: its socket moves
   * into the FdServer (same path, same bound inode) and the net.Server is
   * closed. Connections then arrive as framed stream FdSockets.
   */
  static from(server: net.Server, options: FdServerOptions = {}): FdServer {
    validateOptions(options);
    for (const key of ['mode', 'uid', 'gid'] as const) {
      if (options[key] !== undefined) {
        throw invalidArgValue(`options.${key}`, options[key], 'cannot apply to a socket that is already listening: set it on the net.Server before listen()');
      }
    }
    const fd = (server as unknown as { _handle?: { fd?: number } })?._handle?.fd;
    const path = server instanceof nodeNet().Server ? server.address() : null;
    if (typeof fd !== 'number' || fd < 0 || typeof path !== 'string') {
      throw invalidArgType('server', 'a listening net.Server on a UNIX path', server);
    }
    const binding = options.binding ?? defaultBinding();
    const copy = callSync('LISTEN', { path }, () => binding.unix.dup(fd));
    // net.Server unlinks its path on close; keep the socket file by a second name meanwhile.
    const keep = `${path}.handover-${process.pid}`;
    try {
      fs.linkSync(path, keep);
      server.close();
      fs.renameSync(keep, path);
    } catch (err) {
      binding.closeSync(copy);
      fs.rmSync(keep, { force: true });
      throw err;
    }
    return new FdServer(path, copy, binding, options);
  }

  get closed(): boolean {
    return this.#owned.closed;
  }

  /** Stops listening and removes the socket file. Connected sockets stay open. */
  close(): void {
    if (this.#owned.closed) return;
    this.#poller.close();
    this.#owned.close();
    if (this.#ownsPath) fs.rmSync(this.path, { force: true });
    this.emit('close');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #accept(): void {
    while (!this.#owned.closed) {
      let fd: number | null;
      try {
        fd = callSync('ACCEPT', { path: this.path }, () => this.#unix.accept(this.#owned.fd));
      } catch (err) {
        // Readiness is level-triggered: out of fds, polling again would
        // spin. Pause accepting for a moment instead.
        this.emit('error', err as Error); // callSync throws nothing but Errors
        this.#poller.stop();
        setTimeout(() => this.#owned.closed || this.#poller.start(true, false), 1000).unref();
        return;
      }
      if (fd === null) return;
      this.emit('connection', new FdSocket(fd, this.#options));
    }
  }
}

function removeStaleSocket(path: string, binding: Binding): void {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(path);
  } catch {
    return;
  }
  if (!stat.isSocket()) return; // let listen() fail with EADDRINUSE: not ours to delete
  try {
    binding.closeSync(binding.unix.connect(path));
  } catch (err) {
    if ((err as { code?: string }).code === 'ECONNREFUSED') fs.rmSync(path, { force: true });
  }
}
