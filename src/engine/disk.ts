// A full disk (or quota) while writing: an error that names the file and the free space there, raised by every
// writer of run files (the run store, model files), so a run fails with a message a person can act on.
import { existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { InputError } from './types';

/** The free space of the file system holding `path` (its nearest existing folder), for messages. */
export function freeSpace(path: string): string {
  let dir = path;
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  try {
    const st = statfsSync(dir);
    const bytes = st.bavail * st.bsize;
    return bytes >= 1024 ** 3
      ? `${(bytes / 1024 ** 3).toFixed(1)} GB`
      : bytes >= 1024 ** 2
        ? `${(bytes / 1024 ** 2).toFixed(1)} MB`
        : `${bytes} bytes`;
  } catch {
    return 'unknown space';
  }
}

/**
 * A write that failed because the disk (or the user's quota) is full. It is an input problem (exit code 2): the
 * files written before are intact, and the run can be resumed once there is room.
 */
export class DiskFullError extends InputError {
  constructor(file: string) {
    super(
      `no space left on the device while writing this file (${freeSpace(file)} free there); free some space, then resume the run`,
      file,
    );
    this.name = 'DiskFullError';
  }
}

export function isDiskFull(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
