// File-system helpers shared by the dataset readers: every failure becomes an InputError naming the path.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../types';

export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError('file not found', path);
    if (code === 'EISDIR') throw new InputError('is a folder, expected a file', path);
    throw new InputError(`cannot read (${code ?? String(e)})`, path);
  }
}

/** The most a gzipped dataset file may inflate to (MNIST's largest file is 47 MB): a gzip bomb stops here. */
export const MAX_GUNZIP_BYTES = 2 ** 30;

/** File bytes, gunzipped when they start with the gzip magic (so `.gz` or not, by content). */
export function readMaybeGzip(path: string): Uint8Array {
  const raw = readBytes(path);
  if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return gunzipSync(raw, { maxOutputLength: MAX_GUNZIP_BYTES });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw new InputError(`gzip data inflates to more than ${MAX_GUNZIP_BYTES} bytes (the limit) from a ${raw.length}-byte file`, path);
    throw new InputError(`corrupt gzip data (${e instanceof Error ? e.message : String(e)})`, path);
  }
}

export type PathKind = 'file' | 'folder' | 'missing';

export function pathKind(path: string): PathKind {
  try {
    return statSync(path).isDirectory() ? 'folder' : 'file';
  } catch {
    return 'missing';
  }
}

/** Entry names of a folder, sorted, hidden entries (dot files) left out. */
export function listFolder(path: string): string[] {
  try {
    return readdirSync(path)
      .filter((n) => !n.startsWith('.'))
      .sort();
  } catch (e) {
    throw new InputError(`cannot list folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`, path);
  }
}
