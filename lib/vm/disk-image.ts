// A fresh ext4 disk image per VM run: the cached root filesystem plus the
// run's own files (units, fstab, ...). The guest writes to its root disk,
// so no run may see another's leftovers, and the cached tree stays untouched.
import { execFile as execFileCb } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

/** A file to put into the image: its content (mode 0644 unless given), or a symbolic link. */
export type ImageFile = { content: string | Buffer; mode?: number } | { symlink: string };

/**
 * Writes `image`, a sparse ext4 file system holding the tree `base` with
 * `files` (keyed by absolute guest path) added or replacing what is there,
 * sized with room for the guest to write. `mke2fs -d` copies ownership and
 * modes, so the tree must be read as root.
 */
export async function makeImage(base: string, files: Record<string, ImageFile>, image: string): Promise<void> {
  // Hard links make the staging copy cheap; it must sit on base's file system.
  const stage = `${base}.stage-${process.pid}-${Date.now()}`;
  try {
    await execFile('cp', ['-al', base, stage]);
    for (const [guestPath, file] of Object.entries(files)) {
      if (!path.isAbsolute(guestPath)) throw new Error(`image file path must be absolute: ${guestPath}`);
      const target = path.join(stage, guestPath);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      // Unlink first: writing through a hard link would change the cached tree.
      fs.rmSync(target, { force: true });
      if ('symlink' in file) fs.symlinkSync(file.symlink, target);
      else {
        fs.writeFileSync(target, file.content);
        fs.chmodSync(target, file.mode ?? 0o644); // exactly, whatever the umask
      }
    }
    const { stdout } = await execFile('du', ['-s', '--block-size=1M', stage]);
    const usedMiB = Number(stdout.split('\t')[0]);
    fs.rmSync(image, { force: true });
    // Twice the content plus 256 MiB: room for the journal and whatever the guest writes; sparse, so free.
    await execFile('mke2fs', ['-q', '-t', 'ext4', '-L', 'root', '-d', stage, '-F', image, `${2 * usedMiB + 256}M`], {
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
    });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
