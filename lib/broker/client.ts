import type { Binding } from '../binding';
import type { OwnedFd } from '../owned-fd';
import { Session } from '../session';
import { FdSocket } from '../unix-socket';
import { type WaitOptions, validateWait, waitFor } from '../wait';
import { DEFAULT_BROKER_SOCKET } from './daemon';
import { MAX_MESSAGE, type Peer, type Reply, type SessionInfo, encode } from './protocol';

/**
 * A refusal from the broker, or the end of the connection, as a
 * {@link LiveUpdateClient} call rejects with it. The message reads
 * `CODE: why`.
 *
 * - `ENOENT`: no session of that name in this client's namespace;
 * - `EEXIST`: the name is taken;
 * - `EDQUOT`: this uid has as many sessions as the broker allows;
 * - `ENOSPC`: the service manager's fd store is full;
 * - `EINVAL`: a malformed request (e.g. a bad session name);
 * - `EACCES`: this uid may not use the broker;
 * - `EPERM`: root only (a live update), or the server is not a broker we trust;
 * - `EBUSY`: clients were not ready for a live update (see `notReady`), or
 *   one is already under way;
 * - `ECONNRESET`: the connection closed before the answer came.
 */
export class BrokerError extends Error {
  constructor(
    /** What kind of refusal: an errno name, as listed above. */
    readonly code: string,
    message: string,
    /** For `EBUSY` from {@link LiveUpdateClient.requestKexec}: the clients that were not ready, and why. */
    readonly notReady?: Peer[],
  ) {
    super(`${code}: ${message}`);
    this.name = 'BrokerError';
  }
}

interface Pending {
  resolve: (reply: { reply: Reply; fds: OwnedFd[] }) => void;
  reject: (err: unknown) => void;
}

/** Options of {@link LiveUpdateClient.connect}. */
export interface LiveUpdateClientOptions {
  /** uids besides root and this process's own that may run the broker. */
  trustUids?: readonly number[];
  /** @internal */
  binding?: Binding;
}

/**
 * A process's connection to the live update broker (`liveupdate daemon`):
 * sessions in the client's own namespace (its uid), and the prepare
 * barrier before a live update.
 */
export class LiveUpdateClient implements Disposable {
  readonly #socket: FdSocket;
  readonly #binding?: Binding;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #onPrepare?: () => unknown;
  #refusal?: BrokerError;
  /** Why the connection is over, once it is. */
  #gone?: unknown;

  private constructor(socket: FdSocket, binding?: Binding) {
    this.#socket = socket;
    this.#binding = binding;
    socket.on('message', ({ payload, fds }) => this.#onMessage(payload, fds));
    socket.on('end', () => this.#fail(this.#refusal ?? new BrokerError('ECONNRESET', 'the broker closed the connection')));
    socket.on('error', (err) => this.#fail(err));
  }

  /**
   * Connects to the broker's socket, and checks who listens there before
   * anything is sent: root, this process's own uid, or one of `trustUids`.
   * Anyone else could hand out fds that are not sessions, or keep the
   * sessions handed to it; that is refused with EPERM.
   */
  static connect(path: string = DEFAULT_BROKER_SOCKET, options: LiveUpdateClientOptions = {}): LiveUpdateClient {
    const socket = FdSocket.connect(path, { maxPayload: MAX_MESSAGE, binding: options.binding });
    let uid: number;
    try {
      uid = socket.peerCredentials().uid;
    } catch (err) {
      socket.close();
      throw err;
    }
    if (uid !== 0 && uid !== process.getuid?.() && !(options.trustUids ?? []).includes(uid)) {
      socket.close();
      throw new BrokerError('EPERM', `the server at ${path} runs as uid ${uid}, which is neither root nor trusted (trustUids); nothing was sent to it`);
    }
    return new LiveUpdateClient(socket, options.binding);
  }

  /**
   * Creates an outgoing session under `name` (your namespace); preserve your files in it.
   *
   * Every request takes `options.signal` and `options.timeoutMs`: they end
   * the wait (`ABORT_ERR`, `ETIMEDOUT`), not the request, which the broker
   * may still carry out; a session it made is yours to retrieve or release.
   */
  async createSession(name: string, options?: WaitOptions): Promise<Session> {
    const { fds } = await this.#request({ op: 'create', name }, [], options);
    return new Session(fds[0]!, { direction: 'outgoing', binding: this.#binding });
  }

  /**
   * After a live update: your session `name`, incoming. Before one: another
   * reference to your outgoing one. An incoming session is yours once this
   * resolves: the broker keeps its own reference until this client tells it
   * it has the fd, so a client that dies on the way loses nothing (the
   * session can be retrieved again).
   */
  async retrieveSession(name: string, options?: WaitOptions): Promise<Session> {
    const { reply, fds } = await this.#request({ op: 'retrieve', name }, [], options);
    const state = reply.ok ? reply.session?.state : undefined;
    if (state === 'outgoing') return new Session(fds[0]!, { direction: 'outgoing', binding: this.#binding });
    let session: Session;
    try {
      session = new Session(fds[0]!, { direction: 'incoming', binding: this.#binding });
    } catch (err) {
      for (const f of fds) f.close(); // not acknowledged: the broker still holds it
      throw err;
    }
    // Had the broker gone meanwhile, it still holds its reference: a later
    // retrieve finds the session again, and this one is real either way.
    await this.#request({ op: 'retrieved', name }).catch(() => {});
    return session;
  }

  /** Your sessions the broker knows (asked for page by page; a long list does not fit one message). */
  async listSessions(options?: WaitOptions): Promise<SessionInfo[]> {
    const all: SessionInfo[] = [];
    for (let offset: number | undefined = 0; offset !== undefined; ) {
      const { reply } = await this.#request({ op: 'list', offset }, [], options);
      if (!reply.ok) break;
      all.push(...(reply.sessions ?? []));
      offset = reply.next !== undefined && reply.next > offset ? reply.next : undefined;
    }
    return all;
  }

  /** Tells the broker to let go of your outgoing session `name` (its files are unpreserved unless you hold it). */
  async releaseSession(name: string, options?: WaitOptions): Promise<void> {
    await this.#request({ op: 'release', name }, [], options);
  }

  /** Hands a session you hold back to a restarted broker, so it is kept and recorded again. */
  async adoptSession(name: string, session: Session, options?: WaitOptions): Promise<void> {
    await this.#request({ op: 'adopt', name }, [session], options);
  }

  /**
   * Called when the broker announces a live update; preserve what you
   * must in it. When it returns (or its Promise resolves) the broker is
   * told you are ready. When it throws (or rejects) the broker is told you
   * are not, with the error's message: the live update is refused unless
   * forced, the requester sees why, and this process gets a
   * `LIVEUPDATE_PREPARE_FAILED` warning (never an unhandled rejection).
   */
  onPrepare(handler: () => unknown): void {
    this.#onPrepare = handler;
  }

  /**
   * Asks the broker for a live update into `kernel` (root only). The broker
   * runs the prepare barrier (every client's {@link LiveUpdateClient.onPrepare}),
   * then loads the kernel, writes its record of who owns which session, and
   * reboots into it.
   *
   * Resolves once the broker has accepted: the reboot follows. Rejects with
   * a {@link BrokerError}: `EBUSY` when a client was not ready within
   * `timeoutMs` (its `notReady` names them; pass `force` to go ahead
   * anyway) or another live update is under way, `EPERM` when not root,
   * or the kexec_file_load error.
   *
   * @param options.kernel the bzImage to boot, a path on the broker's machine
   * @param options.cmdline its command line; the running kernel's by default
   * @param options.force go ahead even if a client is not ready
   * @param options.timeoutMs how long the broker's barrier waits for clients; its `barrierTimeoutMs` (30 s) by default
   * @param options.signal ends this call's own wait (`ABORT_ERR`); the broker may go ahead regardless
   */
  async requestKexec(options: { kernel: string; cmdline?: string; force?: boolean; timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    const { signal, ...request } = options;
    await this.#request({ op: 'kexec', ...request }, [], { signal });
  }

  close(): void {
    this.#socket.close();
    this.#fail(new BrokerError('ECONNRESET', 'the client was closed'));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #request(body: Record<string, unknown>, fds: Array<{ fd: number }> = [], options: WaitOptions = {}) {
    let wait: WaitOptions;
    try {
      wait = validateWait(options);
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.#nextId++;
    return waitFor<{ reply: Reply; fds: OwnedFd[] }>(`broker request ${JSON.stringify(body.op)}`, wait, (resolve, reject) => {
      if (this.#gone) {
        reject(this.#gone);
        return () => {};
      }
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(encode({ id, ...body } as never), fds).catch((err) => {
        // A broker that hung up may have said why first (a refusal still to
        // be read): the end of the stream rejects this request with that.
        if (!this.#gone && ['EPIPE', 'ECONNRESET'].includes((err as { code?: string }).code ?? '')) return;
        this.#pending.delete(id);
        reject(this.#gone ?? err);
      });
      // A reply that comes later finds no request and has its fds closed.
      return () => this.#pending.delete(id);
    }).then(({ reply, fds: got }) => {
      if (!reply.ok) {
        for (const f of got) f.close();
        throw new BrokerError(reply.error.code, reply.error.message, reply.error.notReady);
      }
      return { reply, fds: got };
    });
  }

  #onMessage(payload: Buffer, fds: OwnedFd[]): void {
    let message: Reply | { event: string };
    try {
      message = JSON.parse(payload.toString());
      if (typeof message !== 'object' || message === null) throw new Error('not an object');
    } catch {
      for (const f of fds) f.close();
      return;
    }
    if ('event' in message) {
      for (const f of fds) f.close();
      if (message.event === 'prepare') void this.#prepare();
      return;
    }
    const pending = message.id === null ? undefined : this.#pending.get(message.id);
    if (!pending) {
      for (const f of fds) f.close();
      // A reply to no request: the broker refusing the connection itself
      // (not allowed, or too many connections).
      if (!message.ok && ['EACCES', 'EAGAIN'].includes(message.error.code)) {
        this.#refusal = new BrokerError(message.error.code, message.error.message);
        this.#socket.close();
        this.#fail(this.#refusal);
      }
      return;
    }
    this.#pending.delete(message.id!);
    pending.resolve({ reply: message, fds });
  }

  async #prepare(): Promise<void> {
    let failed: string | undefined;
    try {
      await this.#onPrepare?.();
    } catch (err) {
      failed = err instanceof Error ? err.message : String(err);
      process.emitWarning(`the prepare handler failed: ${failed}`, {
        type: 'LiveUpdateWarning',
        code: 'LIVEUPDATE_PREPARE_FAILED',
        detail: 'the broker was told this client is not ready; the live update will not go ahead unless forced',
      });
    }
    await this.#request({ op: 'ready', ...(failed !== undefined && { failed }) }).catch(() => {});
  }

  #fail(err: unknown): void {
    this.#gone ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}
