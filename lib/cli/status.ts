import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { findHolders } from '../holder';
import { DEFAULT_DEVICE_PATH } from '../liveupdate';
import { type KexecTrigger, kexecTrigger } from './init-system';
import { EXIT, type Io, parse } from './io';

export const statusHelp = `Usage: liveupdate status [--json] [--device PATH]

Tells whether this kernel can do a live update: the LUO device and who holds
it, the boot parameters, the kernel and what kinds of files it can preserve.
Nothing is opened or changed.

Options:
  --json         print a JSON object instead of text
  --device PATH  the LUO device (default ${DEFAULT_DEVICE_PATH})
  -h, --help     show this help

Exit status: 0 when LUO is usable (device present), 3 when it is not.
`;

export interface Status {
  kernel: string;
  device: { path: string; present: boolean; holders: Array<{ pid: number; command: string }> };
  cmdline: { liveupdate: string | null; kho: string | null };
  /** Kernel config options that matter, when the config is readable. */
  config: Record<string, string> | null;
  /** File kinds this kernel can preserve, as far as can be told without side effects. */
  preservable: string[];
  /** Why a live update will not work here, if it will not. */
  problems: string[];
  /** How `liveupdate kexec exec` would trigger it here. */
  trigger: KexecTrigger;
}

const CONFIG_KEYS = ['CONFIG_LIVEUPDATE', 'CONFIG_LIVEUPDATE_MEMFD', 'CONFIG_KEXEC_HANDOVER', 'CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT', 'CONFIG_KEXEC_FILE'];

export function readStatus(io: Io, devicePath = DEFAULT_DEVICE_PATH): Status {
  const kernel = os.release();
  const cmdline = readFile(path.join(io.procRoot, 'cmdline')) ?? '';
  const param = (name: string) => cmdline.split(/\s+/).find((w) => w === name || w.startsWith(`${name}=`))?.split('=')[1] ?? null;
  const config = readConfig(io, kernel);
  const exists = fs.existsSync(devicePath);
  // A directory or a plain file there is not the device, whatever its name.
  const present = exists && fs.statSync(devicePath).isCharacterDevice();
  const target = present ? fs.realpathSync(devicePath) : devicePath;
  const holders = present ? findHolders(target, io.procRoot) : [];

  const problems: string[] = [];
  if (exists && !present) problems.push(`${devicePath} is not a character device`);
  else if (!present) {
    if (config && config.CONFIG_LIVEUPDATE !== 'y') problems.push('the kernel is built without CONFIG_LIVEUPDATE');
    else if (param('liveupdate') !== 'on') problems.push('the kernel was booted without liveupdate=on');
    else problems.push(`${devicePath} does not exist`);
  }
  if (config && config.CONFIG_KEXEC_HANDOVER !== 'y') problems.push('the kernel is built without CONFIG_KEXEC_HANDOVER');
  else if (config?.CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT === 'n' && param('kho') !== 'on') problems.push('KHO is off: boot with kho=on');

  // Each LUO file handler registers at boot; today only memfd has one.
  const preservable = present && (!config || config.CONFIG_LIVEUPDATE_MEMFD === 'y' || !('CONFIG_LIVEUPDATE_MEMFD' in config)) ? ['memfd'] : [];
  return {
    kernel,
    device: { path: devicePath, present, holders },
    cmdline: { liveupdate: param('liveupdate'), kho: param('kho') },
    config,
    preservable,
    problems,
    trigger: kexecTrigger(io),
  };
}

function readFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function readConfig(io: Io, release: string): Record<string, string> | null {
  let text: string | undefined;
  try {
    text = gunzipSync(fs.readFileSync(path.join(io.procRoot, 'config.gz'))).toString();
  } catch {
    text = readFile(`/boot/config-${release}`);
  }
  if (!text) return null;
  const config: Record<string, string> = {};
  for (const key of CONFIG_KEYS) {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    config[key] = m ? m[1]! : 'n';
  }
  return config;
}

export async function status(args: string[], io: Io): Promise<number> {
  const { values } = parse(args, { json: { type: 'boolean' }, device: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    io.out(statusHelp);
    return EXIT.ok;
  }
  const s = readStatus(io, values.device);
  if (values.json) {
    io.out(`${JSON.stringify(s, null, 2)}\n`);
  } else {
    const holder = s.device.holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ');
    io.out(
      [
        `kernel:       ${s.kernel}`,
        `device:       ${s.device.path} ${s.device.present ? `present${holder ? `, held by ${holder}` : ', free'}` : fs.existsSync(s.device.path) ? 'not a character device' : 'missing'}`,
        `boot params:  liveupdate=${s.cmdline.liveupdate ?? '(unset)'} kho=${s.cmdline.kho ?? '(unset)'}`,
        `config:       ${s.config ? Object.entries(s.config).map(([k, v]) => `${k.replace('CONFIG_', '')}=${v}`).join(' ') : 'not readable (no /proc/config.gz or /boot/config-*)'}`,
        `preservable:  ${s.preservable.length ? s.preservable.join(', ') : 'nothing'}`,
        s.problems.length ? `live update:  not possible: ${s.problems.join('; ')}` : 'live update:  possible',
        `kexec exec:   ${s.trigger.via === 'systemctl' ? 'systemctl kexec' : 'reboot(LINUX_REBOOT_CMD_KEXEC)'} (${s.trigger.why})`,
        '',
      ].join('\n'),
    );
  }
  return s.device.present ? EXIT.ok : EXIT.unavailable;
}
