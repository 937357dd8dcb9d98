import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Binding, defaultBinding } from '../binding';
import { type Kexec, kexec as realKexec } from '../kexec';
import { DEFAULT_DEVICE_PATH, LiveUpdate } from '../liveupdate';
import { Memfd } from '../memfd';
import type { OwnedFd } from '../owned-fd';
import { Session } from '../session';
import { type FdMessage, FdServer, type FdSocket, type PeerCredentials } from '../unix-socket';
import {
  MAX_MESSAGE,
  type Peer,
  ProtocolError,
  RECORD_SESSION,
  type Reply,
  type Request,
  type SessionInfo,
  encode,
  kernelSessionName,
  parseRequest,
} from './protocol';

/** Where the broker listens unless told otherwise. */
export const DEFAULT_BROKER_SOCKET = '/run/liveupdate/broker.sock';

export interface BrokerOptions {
  socketPath?: string;
  devicePath?: string;
  /** Permission bits of the socket file; 0o660 by default. */
  mode?: number;
  /** Owner and group of the socket file. */
  uid?: number;
  gid?: number;
  /** Who may use the broker besides root and the broker's own uid. */
  allowUids?: number[];
  /** Members of these groups (primary or supplementary) may use it too. */
  allowGids?: number[];
  /** Sessions one uid may have at once; 256 by default. */
  maxSessionsPerUid?: number;
  /** How long the prepare barrier waits for clients by default. */
  barrierTimeoutMs?: number;
  /** Connections at once, from everyone; 256 by default. */
  maxConnections?: number;
  /** Connections at once from one uid; 16 by default. */
  maxConnectionsPerUid?: number;
  /**
   * Replies queued for one client that it has not read. At this many the
   * broker stops reading its requests until it catches up; at four times
   * this many (events included) it is disconnected. 32 by default.
   */
  maxQueuedReplies?: number;
  /** Where lines about what the broker does go; nowhere by default. */
  log?: (line: string) => void;
  kexec?: Kexec;
  /**
   * The system-call layer; the compiled addon by default (tests pass a stand-in device).
   * @internal
   */
  binding?: Binding;
  /**
   * How long to retry opening the device while someone else has it (PID 1
   * opens it briefly at unit starts and at shutdown); 1000 ms by default.
   * The broker opens it only to create or retrieve, and closes it at once.
   */
  deviceBusyRetryMs?: number;
  /** An already listening SOCK_SEQPACKET socket to serve instead of `socketPath` (systemd socket activation). */
  listenFd?: OwnedFd;
  /**
   * Sessions handed back by the service manager (systemd's fd store, from
   * LISTEN_FDS): the broker's own, kept across its restarts and across
   * `systemctl kexec`. The broker owns them from here on.
   */
  handedOver?: Session[];
  /**
   * The record the previous broker left in the store (a memfd, FDNAME
   * `luod-record`, from LISTEN_FDS): which client name and uid each
   * handed-over session belongs to. The broker owns it from here on.
   */
  handedOverRecord?: Memfd;
  /** Where sessions are kept so that they outlive this process; see {@link SessionStore}. */
  store?: SessionStore;
  /**
   * Triggers the live update once the kernel is loaded and the record is
   * written and stored; `kexec.rebootSync()` by default. On a systemd host,
   * `systemctl kexec` (which stops this broker; its sessions live on in the store).
   */
  reboot?: () => void | Promise<void>;
}

/**
 * Somewhere sessions outlive the broker process: systemd's fd store
 * (FileDescriptorStorePreserve=yes), which `systemctl kexec` preserves and
 * the next boot hands back. The broker keeps there every session it holds,
 * under its kernel name, and drops what it hands out or releases; and its
 * record, a sealed memfd under `luod-record`, replaced at every change, so
 * a `systemctl kexec` nobody told the broker about still keeps who owns what.
 */
export interface SessionStore {
  /** How many entries it takes at most, if known (systemd's $FDSTORE). */
  readonly capacity?: number;
  keep(name: string, file: Session | Memfd): void;
  drop(name: string): void;
  /** Resolves once everything kept so far is really there (sd_notify BARRIER). */
  flush(): Promise<void>;
}

interface Entry {
  uid: number;
  name: string;
  kernelName: string;
  state: SessionInfo['state'];
  /**
   * The broker's own reference: held until the kexec (outgoing sessions),
   * and for an incoming session until the client it was handed to says it
   * has it (a fd still queued on a dead client's socket dies with it).
   */
  session?: Session;
  /** The connection an incoming session was sent to and that has not yet said `retrieved`. */
  handoff?: Client;
}

interface Client {
  socket: FdSocket;
  peer: PeerCredentials;
  ready: boolean;
  /** Why its prepare handler failed, when it said so with its `ready`. */
  failed?: string;
  /** Not read from until its queued replies drain. */
  paused: boolean;
}

interface RecordFile {
  version: 1;
  sessions: Array<{ uid: number; name: string; kernelName: string }>;
}

/**
 * The one process that owns /dev/liveupdate ("luod"): creates and
 * retrieves sessions for clients over a UNIX socket, each client confined
 * to its own uid's names, and runs the prepare barrier before a live update.
 *
 * Policy: the broker holds every outgoing session it created until the
 * kexec, also when the client that asked for it has gone; the client (same
 * uid) can get it again with `retrieve`, or drop it with `release`. If the
 * broker itself restarts before the kexec, the sessions only it held are
 * gone (closing an outgoing session unpreserves it); sessions a client
 * still holds survive, and the client hands them back with `adopt`.
 * Which session belongs to whom is kept in a memfd in the broker's own
 * session (`luod-record`), written at the kexec and read by the next broker.
 */
export class LiveUpdateBroker {
  readonly socketPath: string;
  readonly #server: FdServer;
  readonly #entries = new Map<string, Entry>();
  readonly #clients = new Set<Client>();
  readonly #options: BrokerOptions;
  #record?: Session;
  #barrier?: { done: () => void };
  /** Set from the start of a kexec request (its barrier included) until it refuses or fails. */
  #kexecInFlight = false;
  /** Set once a live update is under way: the record is final, nothing may change. */
  #updating = false;

  private constructor(server: FdServer, options: BrokerOptions) {
    this.#server = server;
    this.socketPath = server.path;
    this.#options = options;
    server.on('connection', (socket: FdSocket) => this.#accept(socket));
    server.on('error', (err: Error) => this.#log(`accept failed: ${err.message}`));
  }

  /**
   * Starts a broker: takes over the previous broker's record (after a live
   * update: from the store's handed-over sessions, else from the device,
   * which it opens only for that) and listens on `options.socketPath`
   * ({@link DEFAULT_BROKER_SOCKET} by default) or on `options.listenFd`.
   *
   * Throws, having taken nothing, when the socket cannot be made (e.g.
   * `EADDRINUSE` for a live broker at the path) or the record cannot be
   * read; the handed-over sessions and record are closed then.
   */
  static start(options: BrokerOptions = {}): LiveUpdateBroker {
    const handedOver = [...(options.handedOver ?? [])];
    const recordSession = handedOver.find((s) => s.name === RECORD_SESSION && s.direction === 'incoming');
    const rest = handedOver.filter((s) => s !== recordSession);
    let server: FdServer;
    let record: RecordFile['sessions'];
    try {
      if (options.handedOverRecord) {
        record = readRecordMemfd(options.handedOverRecord);
        recordSession?.close(); // (both would be a broker's bug; the store's is newer)
      } else record = recordSession ? readRecordFrom(recordSession) : withDevice(options, readRecord);
      if (options.listenFd) {
        server = FdServer.fromListening(options.listenFd, { path: options.socketPath, maxPayload: MAX_MESSAGE, binding: options.binding });
      } else {
        const socketPath = options.socketPath ?? DEFAULT_BROKER_SOCKET;
        fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
        server = FdServer.listen(socketPath, { mode: options.mode ?? 0o660, uid: options.uid, gid: options.gid, maxPayload: MAX_MESSAGE, binding: options.binding });
      }
    } catch (err) {
      for (const s of rest) s.close();
      options.handedOverRecord?.close();
      throw err;
    }
    const broker = new LiveUpdateBroker(server, options);
    if (recordSession && !options.handedOverRecord) options.store?.drop(RECORD_SESSION); // read and finished: the next kexec writes a new one
    for (const r of record) broker.#entries.set(r.kernelName, { ...r, state: 'incoming' });
    for (const session of rest) broker.#takeBack(session, record);
    broker.#recordChanged();
    broker.#log(`listening on ${broker.socketPath}; ${broker.#entries.size} sessions known (${rest.length} handed back by the service manager)`);
    return broker;
  }

  // A session from the store: ours from before a restart (outgoing) or from
  // before the live update (incoming, already retrieved by the manager).
  #takeBack(session: Session, record: RecordFile['sessions']): void {
    const uid = /^luod-(\d+)-/.exec(session.name)?.[1];
    if (uid === undefined) {
      this.#log(`closing a handed-back session that is not a broker's: ${JSON.stringify(session.name)}`);
      this.#options.store?.drop(session.name);
      session.close();
      return;
    }
    // The client's own name is in the record (written at the kexec); until a
    // client asks by name, the kernel name stands for it.
    const name = record.find((r) => r.kernelName === session.name)?.name ?? session.name;
    const previous = this.#entries.get(session.name);
    if (previous?.session) {
      session.close();
      return;
    }
    this.#entries.set(session.name, { uid: Number(uid), name, kernelName: session.name, state: session.direction, session });
  }

  #device<T>(fn: (lu: LiveUpdate) => T): T {
    return withDevice(this.#options, fn);
  }

  /** Who is connected, and how far behind each is in reading its replies. */
  stats(): { clients: Array<{ pid: number; uid: number; queuedReplies: number; paused: boolean }> } {
    return { clients: [...this.#clients].map((c) => ({ pid: c.peer.pid, uid: c.peer.uid, queuedReplies: c.socket.pendingSends, paused: c.paused })) };
  }

  /** Every session the broker knows, for every uid. */
  sessions(): Array<SessionInfo & { uid: number }> {
    return [...this.#entries.values()].map((e) => ({ uid: e.uid, name: e.name, kernelName: e.kernelName, state: e.state }));
  }

  /**
   * Tells every connected client a live update is coming and waits until
   * each has answered `ready`, or `timeoutMs` passed. Returns who did not.
   */
  async prepare(timeoutMs = this.#options.barrierTimeoutMs ?? 30_000): Promise<Peer[]> {
    for (const c of this.#clients) {
      c.ready = false;
      c.failed = undefined;
    }
    const waiting = new Promise<void>((resolve) => {
      this.#barrier = { done: resolve };
    });
    for (const c of this.#clients) this.#send(c, { event: 'prepare' });
    this.#checkBarrier();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([waiting, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    } finally {
      clearTimeout(timer);
      this.#barrier = undefined;
    }
    return [...this.#clients]
      .filter((c) => !c.ready || c.failed !== undefined)
      .map((c) => ({ pid: c.peer.pid, uid: c.peer.uid, ...(c.failed !== undefined && { reason: `its prepare handler failed: ${c.failed}` }) }));
  }

  /**
   * The live update: runs the barrier, refuses if a client is not ready
   * (unless `force`), writes the record, loads the kernel and reboots into
   * it. Resolves only if it refused; otherwise the machine is gone.
   */
  async kexec(options: { kernel: string; cmdline?: string; force?: boolean; timeoutMs?: number }): Promise<Peer[]> {
    // Claimed before the barrier: a second request meanwhile must not run a barrier of its own.
    if (this.#kexecInFlight || this.#updating) throw new ProtocolError('a live update is already under way', 'EBUSY');
    this.#kexecInFlight = true;
    try {
      const notReady = await this.prepare(options.timeoutMs);
      if (notReady.length > 0 && !options.force) return notReady;
      this.#updating = true;
      const k = this.#options.kexec ?? realKexec;
      await k.load({ kernel: options.kernel, cmdline: options.cmdline });
      this.writeRecord(); // last: nothing can change after it
      await this.#options.store?.flush();
      this.#log(`rebooting into ${options.kernel} holding ${this.#entries.size} client sessions`);
      const reboot = this.#options.reboot ?? (() => k.rebootSync());
      setImmediate(async () => {
        try {
          await reboot();
        } catch (err) {
          this.#updating = false;
          this.#log(`the reboot failed: ${(err as Error).message}`);
        }
      });
      return notReady;
    } catch (err) {
      this.#updating = false;
      throw err;
    } finally {
      this.#kexecInFlight = false;
    }
  }

  /**
   * Writes who owns which outgoing session: into the store when there is one
   * (see {@link SessionStore}), else into the broker's own preserved session.
   */
  writeRecord(): void {
    if (this.#options.store) {
      this.#storeRecord();
      return;
    }
    this.#record?.close();
    const session = this.#device((lu) => lu.createSessionSync(RECORD_SESSION));
    using memfd = this.#recordMemfd();
    session.preserveSync(memfd, 0);
    this.#record = session;
  }

  #recordMemfd(): Memfd {
    const record: RecordFile = {
      version: 1,
      sessions: [...this.#entries.values()].filter((e) => e.state === 'outgoing').map(({ uid, name, kernelName }) => ({ uid, name, kernelName })),
    };
    const memfd = Memfd.createSync(RECORD_SESSION, { binding: this.#options.binding });
    try {
      fs.writeSync(memfd.fd, JSON.stringify(record));
      memfd.addSealsSync(['shrink', 'grow', 'write', 'seal']);
    } catch (err) {
      memfd.close();
      throw err;
    }
    return memfd;
  }

  // The store keeps its own copy; the broker needs none.
  #storeRecord(): void {
    using memfd = this.#recordMemfd();
    this.#options.store!.drop(RECORD_SESSION);
    this.#options.store!.keep(RECORD_SESSION, memfd);
  }

  /** Outgoing sessions changed: a store's record follows at once (a kexec may come from outside). */
  #recordChanged(): void {
    if (!this.#options.store || this.#updating) return;
    try {
      this.#storeRecord();
    } catch (err) {
      // The sessions themselves are in the store; only their client names would be lost.
      this.#log(`could not store the record: ${(err as Error).message}`);
    }
  }

  /** Stops serving and closes everything, the sessions it holds included (which unpreserves them). */
  close(): void {
    this.#server.close();
    for (const c of this.#clients) c.socket.close();
    for (const e of this.#entries.values()) e.session?.close();
    this.#record?.close();
  }

  #accept(socket: FdSocket): void {
    let peer: PeerCredentials;
    try {
      peer = socket.peerCredentials();
    } catch {
      socket.close();
      return;
    }
    if (!this.#allowed(peer)) {
      this.#refuse(socket, peer, 'EACCES', `uid ${peer.uid} may not use this live update broker`);
      return;
    }
    const { maxConnections = 256, maxConnectionsPerUid = 16 } = this.#options;
    if (this.#clients.size >= maxConnections) {
      this.#refuse(socket, peer, 'EAGAIN', `the broker has ${maxConnections} connections already; try again later`);
      return;
    }
    if ([...this.#clients].filter((c) => c.peer.uid === peer.uid).length >= maxConnectionsPerUid) {
      this.#refuse(socket, peer, 'EAGAIN', `uid ${peer.uid} has ${maxConnectionsPerUid} connections to the broker already`);
      return;
    }
    const client: Client = { socket, peer, ready: false, paused: false };
    this.#clients.add(client);
    socket.on('message', ({ payload, fds }) => this.#handle(client, payload, fds));
    socket.on('error', (err: Error & { code?: string }) => {
      this.#send(client, { id: null, ok: false, error: { code: err.code === 'ERR_MESSAGE_TOO_LARGE' ? 'EMSGSIZE' : 'EPROTO', message: err.message } });
    });
    socket.on('end', () => this.#gone(client));
    if (this.#barrier) this.#send(client, { event: 'prepare' });
  }

  /**
   * Says why, then closes at once: a refused peer holds nothing here. What
   * it already sent is read and dropped first, since closing on unread
   * data would reset the connection and lose the refusal on its way.
   */
  #refuse(socket: FdSocket, peer: PeerCredentials, code: string, message: string): void {
    this.#log(`refused pid ${peer.pid} uid ${peer.uid}: ${message}`);
    socket.on('error', () => {});
    void socket.send(encode({ id: null, ok: false, error: { code, message } })).catch(() => {}); // goes out now: the socket is new
    const binding = this.#options.binding ?? defaultBinding();
    try {
      for (let m = binding.unix.receive(socket.fd, MAX_MESSAGE); m && !m.eof; m = binding.unix.receive(socket.fd, MAX_MESSAGE)) {
        for (const fd of m.fds) binding.closeSync(fd);
      }
    } catch {
      // gone already
    }
    socket.close();
  }

  #handle(client: Client, payload: Buffer, fds: OwnedFd[]): void {
    let request: Request;
    try {
      request = parseRequest(payload);
    } catch (err) {
      for (const f of fds) f.close();
      this.#reply(client, (err as ProtocolError).id ?? null, err);
      return;
    }
    try {
      const expectsFd = request.op === 'adopt';
      if (fds.length !== (expectsFd ? 1 : 0)) throw new ProtocolError(`${request.op} takes ${expectsFd ? 'one fd' : 'no fds'}, got ${fds.length}`, 'EINVAL');
      this.#dispatch(client, request, fds[0]);
    } catch (err) {
      for (const f of fds) if (!f.closed) f.close();
      this.#reply(client, request.id, err);
    }
  }

  #dispatch(client: Client, request: Request, fd?: OwnedFd): void {
    const { uid } = client.peer;
    if (this.#updating && ['create', 'release', 'adopt'].includes(request.op)) {
      throw new ProtocolError('a live update is under way; sessions cannot change now', 'EBUSY');
    }
    switch (request.op) {
      case 'create': {
        const kernelName = kernelSessionName(uid, request.name);
        if (this.#entries.has(kernelName)) throw new ProtocolError(`you already have a session named ${JSON.stringify(request.name)}`, 'EEXIST');
        const max = this.#options.maxSessionsPerUid ?? 256;
        if ([...this.#entries.values()].filter((e) => e.uid === uid).length >= max) throw new ProtocolError(`uid ${uid} has ${max} sessions already`, 'EDQUOT');
        const capacity = this.#options.store?.capacity;
        // One entry is the record's, written at the kexec.
        if (capacity !== undefined && [...this.#entries.values()].filter((e) => e.session).length + 1 >= capacity) {
          throw new ProtocolError(`the service manager's fd store is full (FileDescriptorStoreMax=${capacity}); a new session would not survive the live update`, 'ENOSPC');
        }
        const session = this.#device((lu) => lu.createSessionSync(kernelName));
        const entry: Entry = { uid, name: request.name, kernelName, state: 'outgoing', session };
        this.#entries.set(kernelName, entry);
        this.#options.store?.keep(kernelName, session);
        this.#recordChanged();
        this.#log(`uid ${uid} created ${JSON.stringify(request.name)} (${kernelName})`);
        this.#send(client, { id: request.id, ok: true, session: info(entry) }, [session]);
        return;
      }
      case 'retrieve': {
        const entry = this.#own(uid, request.name, true);
        if (entry.state === 'handed-out') throw new ProtocolError(`session ${JSON.stringify(request.name)} was already retrieved`, 'EINVAL');
        if (entry.state === 'outgoing') {
          // Same kernel: another reference to the session the broker holds.
          this.#send(client, { id: request.id, ok: true, session: info(entry) }, [entry.session!]);
          return;
        }
        if (entry.handoff && entry.handoff !== client) {
          throw new ProtocolError(`session ${JSON.stringify(request.name)} is being handed to pid ${entry.handoff.peer.pid}; ask again if it goes away without it`, 'EBUSY');
        }
        // Retrieving is permanent, and a fd queued on a socket dies with the
        // socket: keep our reference until the client says it has its own.
        entry.session ??= this.#device((lu) => lu.retrieveSessionSync(entry.kernelName));
        entry.handoff = client;
        this.#log(`handing ${JSON.stringify(request.name)} to pid ${client.peer.pid} (uid ${uid}); holding it until it says it has it`);
        this.#send(client, { id: request.id, ok: true, session: info(entry) }, [entry.session]);
        return;
      }
      case 'retrieved': {
        const entry = this.#own(uid, request.name);
        if (entry.handoff !== client) throw new ProtocolError(`no session named ${JSON.stringify(request.name)} is being handed to you`, 'EINVAL');
        entry.state = 'handed-out';
        entry.handoff = undefined;
        entry.session?.close();
        entry.session = undefined;
        this.#options.store?.drop(entry.kernelName); // the client has it; a copy in the store would outlive its finish
        this.#log(`uid ${uid} retrieved ${JSON.stringify(request.name)}`);
        this.#send(client, { id: request.id, ok: true, session: info(entry) });
        return;
      }
      case 'release': {
        const entry = this.#own(uid, request.name);
        entry.session?.close();
        this.#entries.delete(entry.kernelName);
        if (entry.session) this.#options.store?.drop(entry.kernelName);
        if (entry.state === 'outgoing') this.#recordChanged();
        this.#send(client, { id: request.id, ok: true });
        return;
      }
      case 'adopt': {
        const kernelName = kernelSessionName(uid, request.name);
        // Only ever run LUO ioctls on fds that are LUO sessions.
        if (!fs.readlinkSync(`/proc/self/fd/${fd!.fd}`).startsWith('anon_inode:[luo_session] ')) {
          throw new ProtocolError('adopt takes a LUO session fd', 'EINVAL');
        }
        const session = new Session(fd!);
        if (session.name !== kernelName || session.direction !== 'outgoing') {
          session.close(); // only our reference: the client's own keeps its session
          throw new ProtocolError(`that session is not your outgoing ${JSON.stringify(request.name)}`, 'EPERM');
        }
        const existing = this.#entries.get(kernelName);
        if (existing?.session) session.close();
        else {
          this.#entries.set(kernelName, { uid, name: request.name, kernelName, state: 'outgoing', session });
          this.#options.store?.keep(kernelName, session);
          this.#recordChanged();
        }
        this.#send(client, { id: request.id, ok: true, session: info(this.#entries.get(kernelName)!) });
        return;
      }
      case 'list': {
        // In pages that fit a message: 256 sessions of long names do not fit one.
        const mine = [...this.#entries.values()].filter((e) => e.uid === uid).map(info);
        const start = Math.min(request.offset ?? 0, mine.length);
        const page: SessionInfo[] = [];
        let size = 64; // the reply around the list
        for (const s of mine.slice(start)) {
          size += Buffer.byteLength(JSON.stringify(s)) + 1;
          if (size > MAX_MESSAGE && page.length > 0) break;
          page.push(s);
        }
        const next = start + page.length < mine.length ? start + page.length : undefined;
        this.#send(client, { id: request.id, ok: true, sessions: page, ...(next !== undefined && { next }) });
        return;
      }
      case 'ready':
        client.ready = true;
        client.failed = request.failed;
        if (request.failed !== undefined) this.#log(`pid ${client.peer.pid} (uid ${uid}) could not prepare: ${request.failed}`);
        this.#checkBarrier();
        this.#send(client, { id: request.id, ok: true });
        return;
      case 'kexec': {
        if (uid !== 0) throw new ProtocolError('only root may trigger a live update', 'EPERM');
        void this.kexec(request).then(
          (notReady) => {
            if (notReady.length > 0 && !request.force) {
              const who = notReady.map((p) => `pid ${p.pid} (uid ${p.uid})${p.reason ? `: ${p.reason}` : ''}`).join('; ');
              this.#send(client, { id: request.id, ok: false, error: { code: 'EBUSY', message: `not ready: ${who}; pass force to go ahead`, notReady } });
            } else this.#send(client, { id: request.id, ok: true, notReady });
          },
          (err) => this.#reply(client, request.id, err),
        );
        return;
      }
    }
  }

  /**
   * The uid's entry for `name`. With `incoming`, a session the record does
   * not list (a broker restarted after the live update) is still found by
   * its derived kernel name, which only this uid can derive.
   */
  #own(uid: number, name: string, incoming = false): Entry {
    const kernelName = kernelSessionName(uid, name);
    let entry = this.#entries.get(kernelName);
    if (!entry && incoming) {
      try {
        const session = this.#device((lu) => lu.retrieveSessionSync(kernelName));
        entry = { uid, name, kernelName, state: 'incoming', session };
        this.#entries.set(kernelName, entry);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
    }
    if (!entry || entry.uid !== uid) throw new ProtocolError(`you have no session named ${JSON.stringify(name)}`, 'ENOENT');
    entry.name = name; // a session handed back without the record knew only its kernel name
    return entry;
  }

  #gone(client: Client): void {
    if (!this.#clients.delete(client)) return;
    client.socket.close();
    for (const e of this.#entries.values()) {
      if (e.handoff !== client) continue;
      e.handoff = undefined; // the broker still holds it: the session stays retrievable
      this.#log(`pid ${client.peer.pid} went away before it had ${JSON.stringify(e.name)}; it can be retrieved again`);
    }
    this.#checkBarrier();
  }

  #allowed(peer: PeerCredentials): boolean {
    const { allowUids = [], allowGids = [] } = this.#options;
    if (peer.uid === 0 || peer.uid === process.getuid?.() || allowUids.includes(peer.uid)) return true;
    return [peer.gid, ...peer.groups].some((g) => allowGids.includes(g));
  }

  #checkBarrier(): void {
    if (this.#barrier && [...this.#clients].every((c) => c.ready)) {
      this.#barrier.done();
      this.#barrier = undefined;
    }
  }

  #reply(client: Client, id: number | null, err: unknown): void {
    const e = err as { code?: string; message?: string };
    this.#send(client, { id, ok: false, error: { code: e.code ?? 'EIO', message: e.message ?? String(err) } });
  }

  #send(client: Client, message: Reply | { event: 'prepare' }, fds: Array<{ fd: number }> = []): Promise<void> {
    if (client.socket.closed) return Promise.resolve();
    let payload = encode(message);
    if (payload.length > MAX_MESSAGE && 'id' in message) {
      payload = encode({ id: message.id, ok: false, error: { code: 'EMSGSIZE', message: 'the reply would be too large' } });
      fds = [];
    }
    const sent = client.socket.send(payload, fds).catch(() => {
      // The client is gone; its end of the socket is cleaned up on 'end'.
    });
    this.#backpressure(client);
    return sent;
  }

  /**
   * A client that sends requests and does not read the replies would make
   * the broker hold every reply, and each reply's fds. Stop reading from it
   * while its replies pile up; drop it if they pile up anyway (events).
   */
  #backpressure(client: Client): void {
    const limit = this.#options.maxQueuedReplies ?? 32;
    const queued = client.socket.pendingSends;
    if (queued > 4 * limit) {
      this.#log(`disconnecting pid ${client.peer.pid} (uid ${client.peer.uid}): ${queued} replies it does not read`);
      client.socket.close();
      this.#gone(client);
    } else if (queued >= limit && !client.paused) {
      client.paused = true;
      client.socket.pause();
      client.socket.once('drain', () => {
        client.paused = false;
        client.socket.resume();
      });
    }
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }
}

function info(e: Entry): SessionInfo {
  return { name: e.name, kernelName: e.kernelName, state: e.state };
}

function withDevice<T>(options: BrokerOptions, fn: (lu: LiveUpdate) => T): T {
  using lu = LiveUpdate.openSync(options.devicePath ?? DEFAULT_DEVICE_PATH, { binding: options.binding, retryBusyMs: options.deviceBusyRetryMs ?? 1000 });
  return fn(lu);
}

function readRecord(lu: LiveUpdate): RecordFile['sessions'] {
  let session: Session;
  try {
    session = lu.retrieveSessionSync(RECORD_SESSION);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return [];
    throw err;
  }
  return readRecordFrom(session);
}

/** Reads and closes the record a previous broker left in the store. */
function readRecordMemfd(memfd: Memfd): RecordFile['sessions'] {
  try {
    const buf = Buffer.alloc(fs.fstatSync(memfd.fd).size);
    fs.readSync(memfd.fd, buf, 0, buf.length, 0);
    return (JSON.parse(buf.toString()) as RecordFile).sessions;
  } finally {
    memfd.close();
  }
}

/** Reads, finishes and closes the previous broker's record session. */
function readRecordFrom(session: Session): RecordFile['sessions'] {
  try {
    using fd = session.retrieveSync(0);
    const buf = Buffer.alloc(fs.fstatSync(fd.fd).size);
    fs.readSync(fd.fd, buf, 0, buf.length, 0);
    const record = JSON.parse(buf.toString()) as RecordFile;
    session.finishSync();
    return record.sessions;
  } finally {
    session.close();
  }
}

