// Compiled by `npm run typecheck`, never run: what a user's TypeScript sees
// through the package's own name (the built, internals-stripped .d.ts).
// Each @ts-expect-error line must fail to compile; if it ever compiles,
// tsc reports the directive as unused and the typecheck fails.
import { FdServer, FdSocket, Memfd, MemfdMapping, OwnedFd, type FdMessage } from 'liveupdate';

declare const socket: FdSocket;
declare const server: FdServer;

// Events are typed by name.
socket.on('message', (message) => {
  const m: FdMessage = message;
  m.fds.forEach((f) => f.close());
});
socket.once('end', () => {});
socket.on('error', (err) => err.message);
server.on('connection', (client) => client.receive());

// @ts-expect-error: no such event
socket.on('mesage', () => {});
// @ts-expect-error: a message is an FdMessage, not a string
socket.on('message', (message: string) => message);
// @ts-expect-error: 'connection' carries an FdSocket
server.on('connection', (client: Memfd) => client);
// @ts-expect-error: 'end' carries nothing
socket.emit('end', 1);

// Internals stay out of the public declarations: a subclass could reach
// them if they were there.
// @ts-expect-error: the identity parameter is internal
new OwnedFd(3, {}, { label: 'x' });
export class Sub extends OwnedFd {
  peek() {
    // @ts-expect-error: withFd is internal
    void this.withFd;
    // @ts-expect-error: so is the binding
    void this.binding;
  }
}

// The system-call layer is an injection point for this package's own
// tests, not API: neither its type nor the options that take it are public.
// @ts-expect-error: no Binding export
export type { Binding } from 'liveupdate';
// @ts-expect-error: no binding option
Memfd.createSync('x', { binding: {} });

// `using` disposes them.
{
  using memfd = Memfd.createSync('typed');
  const name: string | undefined = memfd.name;
  void name;
}

// A mapping is disposable and its buffer a plain ArrayBuffer.
{
  using memfd = Memfd.createSync('mapped', { size: 4096 });
  using mapping: MemfdMapping = memfd.mapSync({ offset: 0, length: 4096, writable: true });
  const bytes: Uint8Array = new Uint8Array(mapping.buffer);
  const length: number = mapping.length;
  void [bytes, length];
  // @ts-expect-error: read-only
  mapping.length = 1;
  // @ts-expect-error: offset is a number, not a bigint
  memfd.mapSync({ offset: 0n });
  // @ts-expect-error: a mapping only comes from mapSync
  new MemfdMapping();
}
