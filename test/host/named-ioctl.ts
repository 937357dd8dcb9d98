// The test devices are written against named operations and argument
// objects ({ fd, token, name } in, { fd, name } out), which read better in a
// test than the addon's positional form. This turns such a device into the
// Binding's ioctl/ioctlSync (operation = ioctlLayout[name].index, inputs
// positional) with the real addon's layout, so a fake follows the same
// table the library reads its indices from.
import { defaultBinding } from '../../lib/binding';
import type { Binding, IoctlInput, IoctlOperation, IoctlOutput } from '../../types/binding';

export interface IoctlArgs {
  fd?: number;
  token?: bigint;
  name?: string;
}

export interface IoctlResult {
  fd?: number;
  name?: string;
}

export const ioctlLayout = defaultBinding().ioctlLayout;
const names = Object.keys(ioctlLayout) as IoctlOperation[];

/** The name of the operation at `index` in the addon's table. */
export function operationAt(index: number): IoctlOperation {
  const op = names.find((n) => ioctlLayout[n].index === index);
  if (!op) throw new RangeError('unknown LUO ioctl operation');
  return op;
}

/** The positional inputs, back as the argument object the device reads. */
export function namedArgs(op: IoctlOperation, inputs: IoctlInput[]): IoctlArgs {
  const l = ioctlLayout[op];
  const args: IoctlArgs = {};
  let next = 0;
  if (l.fd?.direction === 'in') args.fd = inputs[next++] as number;
  // The library passes small tokens as numbers; the devices key by bigint.
  if (l.token?.direction === 'in') args.token = BigInt(inputs[next++] as number | bigint);
  if (l.name?.direction === 'in') args.name = inputs[next++] as string;
  return args;
}

/** The device's result object, as the addon returns it. */
export function output(op: IoctlOperation, result: IoctlResult): IoctlOutput {
  const l = ioctlLayout[op];
  if (l.fd?.direction === 'out') return result.fd;
  if (l.name?.direction === 'out') return result.name;
  return undefined;
}

type NamedSync = (fd: number, op: IoctlOperation, args: IoctlArgs) => IoctlResult;
type NamedAsync = (fd: number, op: IoctlOperation, args: IoctlArgs) => Promise<IoctlResult>;

/** ioctlSync, ioctl and ioctlLayout for a Binding, from a device's named handlers. */
export function namedIoctl(sync: NamedSync, promise: NamedAsync = async (fd, op, args) => sync(fd, op, args)): Pick<Binding, 'ioctl' | 'ioctlSync' | 'ioctlLayout'> {
  return {
    ioctlLayout,
    ioctlSync: (fd, index, ...inputs) => {
      const op = operationAt(index);
      return output(op, sync(fd, op, namedArgs(op, inputs)));
    },
    ioctl: async (fd, index, ...inputs) => {
      const op = operationAt(index);
      return output(op, await promise(fd, op, namedArgs(op, inputs)));
    },
  };
}
