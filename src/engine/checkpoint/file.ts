// File reading and atomic writing for checkpoints, with errors that name the file.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiskFullError, isDiskFull } from '../disk';
import { InputError } from '../types';

/** Reads a whole file, turning file-system errors into InputErrors that name it. */
export async function readCheckpointBytes(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : (err as Error).message;
    throw new InputError(why, path);
  }
}

/**
 * Writes through a temporary file in the same folder, flushed, then renamed over `path`: readers (and
 * a crash halfway) see either the old file or the whole new one.
 */
export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temp, 'w');
  try {
    for (const chunk of chunks) {
      // A write may be short (a disk that fills up writes what fits and says so): write the rest, or fail.
      for (let at = 0; at < chunk.length;) {
        const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
        if (bytesWritten <= 0) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        at += bytesWritten;
      }
    }
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw isDiskFull(err) ? new DiskFullError(path) : err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
