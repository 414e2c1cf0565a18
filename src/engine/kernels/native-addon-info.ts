// Which native addon is computing (backend `native`), for a run's provenance and `nad bench --json`: the
// file it was loaded from, its SHA-256, the instruction set it picked and its threads. The hash is of the file
// as it is on disk when first asked (right after the backend starts), cached per path, size and mtime.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { NativeAddonProvenance } from '../../shared/provenance';
import { nativeAddonPath, nativeIsa } from './native-addon';
import { simdKernelThreads } from './simd';

let cached: { key: string; sha256: string } | undefined;

/** The SHA-256 of the addon file (hex). */
export function sha256OfFile(file: string): string {
  const st = statSync(file);
  const key = `${file}\0${st.size}\0${st.mtimeMs}`;
  if (cached?.key !== key) cached = { key, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
  return cached.sha256;
}

/** The loaded addon's facts, or undefined when it has not loaded in this process. Threads are the active native backend's. */
export function nativeAddonInfo(): NativeAddonProvenance | undefined {
  const file = nativeAddonPath();
  const isa = nativeIsa();
  if (!file || !isa) return undefined;
  return { file, sha256: sha256OfFile(file), isa, threads: simdKernelThreads() };
}
