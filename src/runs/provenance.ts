// What made a run, recorded in its config.json as `provenance`: the product's version, the engine (backend,
// kernel build, on `native` the addon's SHA-256, instruction set and threads, Node, tfjs), the machine, and
// the SHA-256 of every input file the config names (data, test data, models, images). A run folder from an
// older version has no provenance; readers show "unknown".
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { KERNELS_SOURCE_HASH } from '../engine/kernels/simd-binary';
import { nativeAddonInfo } from '../engine/kernels/native-addon-info';
import type { BackendInfo } from '../engine/backend';
import type { JobConfig } from './config';
import type { Provenance, ProvenanceInput } from '../shared/provenance';

export type { Provenance, ProvenanceInput } from '../shared/provenance';

/** Bigger inputs are not hashed (their size and time are recorded): a dataset folder of many gigabytes would stall the run's start. */
export const HASH_LIMIT_BYTES = 4 * 1024 ** 3;

let version: string | undefined;

/** The package's version: package.json beside dist/ (the CLI, the worker, the VSIX) or the repository's (tests). */
export function productVersion(): string {
  if (version) return version;
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'nad-vscode' && pkg.version) return (version = pkg.version);
      } catch {
        // not ours: keep looking
      }
    }
    if (dirname(dir) === dir) return (version = 'unknown');
  }
}

function hashFile(file: string, hash: ReturnType<typeof createHash>): void {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** Files under a folder, sorted by their relative path (so the digest does not depend on the listing order). */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(root);
  return out.sort((a, b) => (relative(root, a) < relative(root, b) ? -1 : 1));
}

const cache = new Map<string, ProvenanceInput>();

/**
 * SHA-256 of a file, or of a folder (over each file's relative path and contents, in path order); `mnist` is the
 * embedded package. A path with a `#option` suffix (CIFAR-100's `#coarse`, GTSRB's `#roi`) is hashed without it.
 */
export function digestInput(role: string, path: string): ProvenanceInput {
  if (path === 'mnist') return { role, path, sha256: 'embedded', bytes: 0 };
  const real = existsSync(path) ? path : path.replace(/#[a-z]+$/, '');
  if (!existsSync(real)) return { role, path, sha256: 'missing', bytes: 0 };
  const st = statSync(real);
  const key = `${real}\0${st.size}\0${st.mtimeMs}`;
  const known = cache.get(key);
  if (known) return { ...known, role };
  const files = st.isDirectory() ? filesUnder(real) : [real];
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  let sha256: string;
  if (bytes > HASH_LIMIT_BYTES) sha256 = `not hashed (over ${HASH_LIMIT_BYTES / 1024 ** 3} GiB)`;
  else {
    const h = createHash('sha256');
    if (st.isDirectory())
      for (const f of files) {
        h.update(relative(real, f).split('\\').join('/') + '\0');
        hashFile(f, h);
      }
    else hashFile(real, h);
    sha256 = h.digest('hex');
  }
  const out = { role, path, sha256, bytes, ...(st.isDirectory() ? { files: files.length } : {}) };
  cache.set(key, out);
  return out;
}

/** The input files a config names, by role. */
export function inputsOf(config: JobConfig): Array<readonly [string, string]> {
  const out: Array<readonly [string, string]> = [];
  const add = (role: string, p: unknown): void => {
    if (typeof p === 'string' && p) out.push([role, p]);
  };
  const c = config as unknown as Record<string, unknown>;
  add('data', c['data']);
  if (c['test'] !== c['data']) add('test', c['test']);
  add('model', c['model'] !== undefined && typeof c['model'] === 'string' ? c['model'] : undefined);
  add('student', c['student']);
  add('teacher', c['teacher']);
  for (const [i, m] of (Array.isArray(c['models']) ? (c['models'] as unknown[]) : []).entries()) add(`model ${i + 1}`, m);
  for (const [i, m] of (Array.isArray(c['images']) ? (c['images'] as unknown[]) : []).entries()) add(`image ${i + 1}`, m);
  for (const [i, m] of (Array.isArray(c['inspect']) ? (c['inspect'] as unknown[]) : []).entries()) add(`inspected ${i + 1}`, m);
  const params = c['params'];
  if (params && typeof params === 'object')
    for (const [k, v] of Object.entries(params as Record<string, unknown>))
      if (typeof v === 'string' && v && existsSync(v)) add(`param ${k}`, v);
  // A train config's model is an architecture, not a file.
  return out.filter(
    ([role, p]) => !(role === 'model' && config.kind === 'train') && (p === 'mnist' || existsSync(p.replace(/#[a-z]+$/, ''))),
  );
}

export function collectProvenance(config: JobConfig, backend: BackendInfo): Provenance {
  const cpu = cpus()[0];
  const addon = backend.name === 'native' ? nativeAddonInfo() : undefined;
  return {
    version: productVersion(),
    backend: backend.description,
    kernels: KERNELS_SOURCE_HASH,
    node: process.version,
    tfjs: tf.version_core,
    platform: `${process.platform}-${process.arch}`,
    cpu: cpu ? `${cpu.model.trim()} (${cpus().length} logical cores)` : 'unknown',
    ...(addon ? { addon } : {}),
    inputs: inputsOf(config).map(([role, p]) => digestInput(role, p)),
  };
}
