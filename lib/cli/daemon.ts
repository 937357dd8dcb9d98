import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultBinding } from '../binding';
import { DEFAULT_BROKER_SOCKET, LiveUpdateBroker } from '../broker/daemon';
import { BrokerError, LiveUpdateClient } from '../broker/client';
import { RECORD_SESSION } from '../broker/protocol';
import { systemdSessionStore } from '../broker/systemd-store';
import type { Memfd } from '../memfd';
import type { OwnedFd } from '../owned-fd';
import type { Session } from '../session';
import { listenFds } from '../systemd/listen-fds';
import { notifySync } from '../systemd/notify';
import { type Systemctl, kexecTrigger, realSystemctl } from './init-system';
import { CliError, EXIT, type Io, parse } from './io';

export const daemonHelp = `Usage:
  liveupdate daemon [--socket PATH] [--mode 660] [--owner USER] [--group GROUP]
                    [--allow-uid N,…] [--allow-gid N,…] [--device PATH]
  liveupdate daemon kexec --kernel FILE [--append "ARGS"] [--force] [--timeout S] [--socket PATH]

The live update broker ("luod"): the one process that owns /dev/liveupdate.
Other processes connect to its socket (LiveUpdateClient in the library) to
create and, after a live update, retrieve sessions in their own namespace
(their uid), and are told before a live update so they can get ready.

  daemon        runs the broker in the foreground (logs on stderr). Root,
                the broker's own uid and the allowed uids/groups may connect.
                After a live update it takes back the previous broker's
                record, so each client gets exactly its own sessions again.
  daemon kexec  asks the running broker for a live update: it tells every
                client, waits until all are ready (--timeout, default 30 s),
                refuses if one is not (unless --force), then loads FILE and
                reboots into it. The new kernel's command line is --append's,
                or the running one.

--owner and --group (the socket's) take a name or a number. --device is
the LUO device to open (/dev/liveupdate).

Policy: sessions stay held by the broker until the kexec, also when their
client exits; the client releases them explicitly. A broker restart before
the kexec loses the sessions only it held; clients re-adopt theirs.

Under systemd (see systemd/liveupdate.service and liveupdate.socket in the
package): the socket comes from socket activation (LISTEN_FDS), READY=1 and
STATUS= go to systemd, and every session the broker holds is kept in the
service's fd store (FileDescriptorStorePreserve=yes), so restarts and
\`systemctl kexec\` keep them; the live update itself goes through
\`systemctl kexec\`, and the next boot hands the sessions back in LISTEN_FDS.
`;

const list = (v: string | undefined, what: string) =>
  v === undefined
    ? []
    : v.split(',').map((x) => {
        if (!/^\d+$/.test(x)) throw new CliError(`${what} takes comma-separated ids`, EXIT.usage);
        return Number(x);
      });

/** A uid or gid from a number or a name (through NSS: `getent`, so LDAP users work too). */
function idOf(value: string, database: 'passwd' | 'group', flag: string, what: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const r = spawnSync('getent', [database, value], { encoding: 'utf8' });
  const id = r.status === 0 ? r.stdout.split(':')[2] : undefined;
  if (id === undefined || !/^\d+$/.test(id)) throw new CliError(`${flag} takes ${what}; ${JSON.stringify(value)} is neither`, EXIT.usage);
  return Number(id);
}

export async function daemonCommand(args: string[], io: Io, systemctl: Systemctl = realSystemctl): Promise<number> {
  if (args[0] === 'kexec') return requestKexec(args.slice(1), io);
  const { values } = parse(args, {
    socket: { type: 'string' },
    mode: { type: 'string' },
    owner: { type: 'string' },
    group: { type: 'string' },
    'allow-uid': { type: 'string' },
    'allow-gid': { type: 'string' },
    device: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(daemonHelp);
    return EXIT.ok;
  }
  const mode = values.mode === undefined ? 0o660 : Number.parseInt(values.mode, 8);
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new CliError('--mode takes octal permission bits, e.g. 660', EXIT.usage);
  const owner = values.owner === undefined ? undefined : idOf(values.owner, 'passwd', '--owner', 'a user name or uid');
  const group = values.group === undefined ? undefined : idOf(values.group, 'group', '--group', 'a group name or gid');
  const log = (line: string) => io.err(`liveupdate daemon: ${line}\n`);
  const { listenFd, sessions, record } = fromServiceManager(io, log);
  const store = systemdSessionStore(io.env);
  if (sessions.length > 0 && !store) log('sessions came in LISTEN_FDS but there is no NOTIFY_SOCKET to keep them in the fd store');
  const underSystemd = kexecTrigger(io).via === 'systemctl';
  const broker = LiveUpdateBroker.start({
    socketPath: values.socket,
    devicePath: values.device,
    mode,
    uid: owner,
    gid: group,
    allowUids: list(values['allow-uid'], '--allow-uid'),
    allowGids: list(values['allow-gid'], '--allow-gid'),
    log,
    listenFd,
    handedOver: sessions,
    handedOverRecord: record,
    store,
    // systemd stops this broker on the way; its sessions live on in the fd store.
    reboot: underSystemd
      ? () => {
          const status = systemctl(['--no-block', 'kexec']);
          if (status !== 0) throw new Error(`systemctl kexec failed (exit status ${status})`);
        }
      : undefined,
  });
  const held = broker.sessions().length;
  notifySync({ READY: 1, STATUS: `serving ${broker.socketPath}; ${held} sessions from before` }, { env: io.env });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  notifySync({ STOPPING: 1 }, { env: io.env });
  broker.close();
  return EXIT.ok;
}

/** What systemd passed: the listening socket (socket activation) and the sessions of the fd store. */
function fromServiceManager(io: Io, log: (line: string) => void): { listenFd?: OwnedFd; sessions: Session[]; record?: Memfd } {
  const sessions: Session[] = [];
  let listenFd: OwnedFd | undefined;
  let record: Memfd | undefined;
  for (const f of listenFds({ env: io.env })) {
    if (f.kind === 'session') sessions.push(f.file);
    else if (!record && f.kind === 'memfd' && f.name === RECORD_SESSION) record = f.file;
    else if (!listenFd && f.kind === 'other' && defaultBinding().unix.socketType(f.file.fd) === 'seqpacket') listenFd = f.file;
    else {
      log(`closing fd ${f.file.fd} (${f.name}, ${f.kind}) from LISTEN_FDS: not a session nor a SOCK_SEQPACKET socket`);
      f.file.close();
    }
  }
  return { listenFd, sessions, record };
}

async function requestKexec(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, {
    kernel: { type: 'string' },
    append: { type: 'string' },
    force: { type: 'boolean' },
    timeout: { type: 'string' },
    socket: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.out(daemonHelp);
    return EXIT.ok;
  }
  if (!values.kernel) throw new CliError('daemon kexec needs --kernel FILE', EXIT.usage);
  const timeout = values.timeout === undefined ? 30 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new CliError('--timeout takes a number of seconds', EXIT.usage);
  const cmdline = values.append ?? fs.readFileSync(path.join(io.procRoot, 'cmdline'), 'utf8').trim();
  let client: LiveUpdateClient;
  try {
    client = LiveUpdateClient.connect(values.socket ?? DEFAULT_BROKER_SOCKET);
  } catch (err) {
    throw new CliError((err as Error).message, EXIT.unavailable);
  }
  try {
    await client.requestKexec({ kernel: values.kernel, cmdline, force: values.force, timeoutMs: timeout * 1000 });
    io.out('the broker is rebooting into the new kernel\n');
    return EXIT.ok;
  } catch (err) {
    if (err instanceof BrokerError) throw new CliError(err.message, err.code === 'EBUSY' ? EXIT.failed : EXIT.unavailable);
    throw err;
  } finally {
    client.close();
  }
}
