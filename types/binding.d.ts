// The contract between native/ (the addon) and lib/: what the compiled
// `liveupdate.node` exports. Every call has a Promise form and a `…Sync`
// twin; failures are Error objects with Node's system-error fields.

/**
 * What one LUO ioctl hands back: the new fd (CREATE_SESSION,
 * RETRIEVE_SESSION, SESSION_RETRIEVE_FD), the session name
 * (SESSION_GET_NAME), or nothing.
 */
export type IoctlOutput = number | string | undefined;

/**
 * The inputs of one LUO ioctl, positional after (fd, operation) in the
 * table's field order (fd, token, name), each present only when the
 * operation reads it: CREATE_SESSION and RETRIEVE_SESSION take (name),
 * SESSION_PRESERVE_FD (fd, token), SESSION_RETRIEVE_FD (token), FINISH and
 * GET_NAME nothing. A token is a bigint, or a number that is a safe
 * non-negative integer. The struct's other fields stay zero.
 */
export type IoctlInput = number | bigint | string;

export type IoctlOperation =
  | 'LIVEUPDATE_IOCTL_CREATE_SESSION'
  | 'LIVEUPDATE_IOCTL_RETRIEVE_SESSION'
  | 'LIVEUPDATE_SESSION_PRESERVE_FD'
  | 'LIVEUPDATE_SESSION_RETRIEVE_FD'
  | 'LIVEUPDATE_SESSION_FINISH'
  | 'LIVEUPDATE_SESSION_GET_NAME';

export interface FieldLayout {
  offset: number;
  direction: 'in' | 'out';
}

/** The struct behind one ioctl, as compiled into the addon. */
export interface IoctlLayout {
  /** What ioctl()/ioctlSync() take as `operation`: the entry's place in the addon's table. */
  index: number;
  request: number;
  size: number;
  fd?: FieldLayout;
  token?: FieldLayout;
  name?: FieldLayout;
}

export interface NativeConstants {
  O_RDONLY: number;
  O_RDWR: number;
  FD_CLOEXEC: number;
  MFD_ALLOW_SEALING: number;
  F_SEAL_SEAL: number;
  F_SEAL_SHRINK: number;
  F_SEAL_GROW: number;
  F_SEAL_WRITE: number;
  F_SEAL_FUTURE_WRITE: number;
  F_SEAL_EXEC: number;
  KEXEC_FILE_UNLOAD: number;
  KEXEC_FILE_NO_INITRAMFS: number;
}

/** What one recvmsg() brought; see native/unix.cc. */
export interface ReceivedMessage {
  payload: Buffer;
  fds: number[];
  /** The peer closed the socket. */
  eof: boolean;
  /** Payload (MSG_TRUNC) or fds (MSG_CTRUNC) were cut; cut fds are already closed. */
  truncated: boolean;
  fdsTruncated: boolean;
}

/** SOCK_SEQPACKET UNIX sockets carrying fds; every call is non-blocking. */
export interface UnixBinding {
  socketPair(): [number, number];
  listen(path: string, backlog: number): number;
  connect(path: string): number;
  /** null: no connection waiting. */
  accept(fd: number): number | null;
  /** Bytes sent; -1: the socket buffer is full, nothing was sent. */
  send(fd: number, payload: Buffer, fds: number[]): number;
  /** The kind of UNIX socket fd is, or null for anything else. */
  socketType(fd: number): 'seqpacket' | 'stream' | null;
  /** null: no message waiting. */
  receive(fd: number, maxPayload: number): ReceivedMessage | null;
  peerCredentials(fd: number): { pid: number; uid: number; gid: number; groups: number[] };
  /** A close-on-exec copy of fd (F_DUPFD_CLOEXEC). */
  dup(fd: number): number;
  /**
   * One SOCK_DGRAM datagram to `address` (the sun_path bytes: a path, or a
   * NUL then an abstract name) with SCM_CREDENTIALS (this process's pid,
   * uid, gid) and the fds (SCM_RIGHTS): the sd_notify(3) wire format.
   * Blocks while the receiver's queue is full (the Promise form on a worker).
   */
  sendDatagram(address: Buffer, payload: Buffer, fds: number[]): Promise<void>;
  sendDatagramSync(address: Buffer, payload: Buffer, fds: number[]): void;
  /** Event-loop readiness of an fd (uv_poll); the callback runs until stop()/close(). */
  Poller: new (fd: number, callback: (readable: boolean, writable: boolean, hangup: boolean) => void) => {
    start(readable: boolean, writable: boolean): void;
    stop(): void;
    close(): void;
  };
}

/** Marks one mapping for munmapSync; opaque to JS. */
export interface MappingHandle {
  readonly __mappingHandle: unique symbol;
}

export interface Binding {
  readonly unix: UnixBinding;
  /** `operation` is ioctlLayout[name].index; see IoctlInput for the inputs. */
  ioctl(fd: number, operation: number, ...inputs: IoctlInput[]): Promise<IoctlOutput>;
  ioctlSync(fd: number, operation: number, ...inputs: IoctlInput[]): IoctlOutput;
  readonly ioctlLayout: Readonly<Record<IoctlOperation, IoctlLayout>>;

  /** open(2); O_CLOEXEC is always added. */
  open(path: string, flags: number): Promise<number>;
  openSync(path: string, flags: number): number;
  close(fd: number): Promise<void>;
  closeSync(fd: number): void;
  /** memfd_create(2); MFD_CLOEXEC is always added. */
  memfdCreate(name: string, flags: number): Promise<number>;
  memfdCreateSync(name: string, flags: number): number;
  addSeals(fd: number, seals: number): Promise<void>;
  addSealsSync(fd: number, seals: number): void;
  getSeals(fd: number): Promise<number>;
  getSealsSync(fd: number): number;
  /** fcntl(F_GETFD): the fd's FD_* flags; EBADF when it is not open. */
  getFdFlags(fd: number): Promise<number>;
  getFdFlagsSync(fd: number): number;
  /** fcntl(F_SETFD). */
  setFdFlags(fd: number, flags: number): Promise<void>;
  setFdFlagsSync(fd: number, flags: number): void;
  /** pipe2(O_CLOEXEC) -> [readFd, writeFd]. */
  pipe(): Promise<[number, number]>;
  pipeSync(): [number, number];
  /** kexec_file_load(2); initrdFd -1 with KEXEC_FILE_NO_INITRAMFS for none. */
  kexecFileLoad(kernelFd: number, initrdFd: number, cmdline: string, flags: number): Promise<void>;
  kexecFileLoadSync(kernelFd: number, initrdFd: number, cmdline: string, flags: number): void;
  /** reboot(LINUX_REBOOT_CMD_KEXEC): settles only by failing. */
  rebootKexec(): Promise<never>;
  rebootKexecSync(): never;

  /**
   * mmap(2) MAP_SHARED of [offset, offset+length) of fd, PROT_READ (and
   * PROT_WRITE when writable), as an ArrayBuffer that is the mapping. Sync
   * only: no page is touched. The mapping is unmapped exactly once: by
   * munmapSync, or when both the buffer and the handle are collected (or the
   * environment is torn down). `length` must not exceed
   * buffer.constants.MAX_LENGTH.
   */
  mmapSync(fd: number, offset: number, length: number, writable: boolean): { buffer: ArrayBuffer; handle: MappingHandle };
  /** Detaches `buffer` (byteLength 0), then munmap(2). Idempotent. */
  munmapSync(handle: MappingHandle, buffer: ArrayBuffer): void;
  /** sysconf(_SC_PAGESIZE): mmap offsets are multiples of it. */
  readonly pageSize: number;

  readonly constants: NativeConstants;
}
