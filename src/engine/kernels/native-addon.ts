// Finds and loads the native kernels (native/addon/: native/*.c compiled for this CPU as a Node-API addon
// by native/build-addon.mjs). The bundles look next to themselves (scripts/build.mjs copies the addon into
// dist/); from sources (tests, tsx) the prebuilt under native/addon/prebuilt/ is used. NAD_NATIVE_ADDON
// names another file (and only that one is tried). A missing or unloadable addon is an error with a one-line reason, which the
// backend choice records before it falls back to wasm.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { NativeKernelAddon } from './simd-interfaces';

const TARGET = `${process.platform}-${process.arch}`;
/** The addon's file name in dist/ (and so in the VSIX). */
export const NATIVE_ADDON_FILE = `nad-kernels-${TARGET}.node`;

let loaded: NativeKernelAddon | undefined;
let loadedFrom: string | undefined;
let failure: string | undefined;

function candidates(): string[] {
  const up = [__dirname, join(__dirname, '..'), join(__dirname, '..', '..'), join(__dirname, '..', '..', '..')];
  if (process.env.NAD_NATIVE_ADDON) return [process.env.NAD_NATIVE_ADDON];
  return [
    ...up.map((d) => join(d, NATIVE_ADDON_FILE)),
    ...up.map((d) => join(d, 'native', 'addon', 'prebuilt', TARGET, 'nad-kernels.node')),
  ];
}

/** The native kernels, loaded once; throws an Error whose message says in one line why they cannot load. */
export function loadNativeAddon(): NativeKernelAddon {
  if (loaded) return loaded;
  if (failure) throw new Error(failure);
  const file = candidates().find((f) => existsSync(f));
  if (!file) {
    failure = process.env.NAD_NATIVE_ADDON
      ? `native kernels: NAD_NATIVE_ADDON names ${process.env.NAD_NATIVE_ADDON}, which does not exist`
      : `no native kernels for ${TARGET} (build them with: node native/build-addon.mjs)`;
    throw new Error(failure);
  }
  const module = { exports: {} as unknown };
  try {
    process.dlopen(module, file);
  } catch (e) {
    failure = `native kernels ${file} did not load (${String(e instanceof Error ? e.message : e).split('\n')[0]})`;
    throw new Error(failure);
  }
  loaded = module.exports as NativeKernelAddon;
  loadedFrom = file;
  return loaded;
}

/** The file the addon was loaded from, if it loaded. */
export function nativeAddonPath(): string | undefined {
  return loadedFrom;
}

/** The instruction set the loaded addon runs (avx512, avx2 or portable), if it loaded. */
export function nativeIsa(): string | undefined {
  return loaded?.isa;
}
