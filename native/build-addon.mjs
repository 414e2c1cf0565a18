/* global process, console */
// Builds the native kernels (native/*.c, the same sources as the wasm module, through
// native/addon/wasm_simd128.h) as a Node-API addon with the system C compiler: one object per
// instruction set (x86-64: AVX-512, AVX2+FMA, portable; other CPUs: portable), linked into one .node that
// picks the widest the CPU runs when it loads. Output: native/addon/prebuilt/<platform>-<arch>/nad-kernels.node,
// which scripts/build.mjs copies into dist/ (and so into the VSIX). Without a compiler it says so in one
// line and leaves the committed prebuilt (if any) as it is; nothing is downloaded.
// Usage: node native/build-addon.mjs [--if-stale] [--cc <compiler>]   (env CC also picks the compiler)
//   --if-stale: skip when the prebuilt was built from the current sources (hash in its .sha256 file), and
//   report a failed compile in one line instead of failing (scripts/build.mjs uses it).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const target = `${process.platform}-${process.arch}`;
const outDir = join('native', 'addon', 'prebuilt', target);
const out = join(outDir, 'nad-kernels.node');
const stamp = join(outDir, 'nad-kernels.sha256');

const sources = [
  ...readdirSync('native').filter((f) => /\.[ch]$/.test(f)).map((f) => join('native', f)),
  ...readdirSync(join('native', 'addon')).filter((f) => /\.[ch]$/.test(f)).map((f) => join('native', 'addon', f)),
].sort();
const hash = createHash('sha256');
for (const f of sources) hash.update(f).update(readFileSync(f));
const sourceHash = hash.digest('hex').slice(0, 16);

if (process.argv.includes('--if-stale') && existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === sourceHash) {
  process.exit(0);
}

const ccArg = process.argv.indexOf('--cc');
const cc = ccArg > 0 ? process.argv[ccArg + 1] : findCompiler();
const nodeInclude = findNodeHeaders();
if (!cc || !nodeInclude) {
  const missing = !cc ? 'no C compiler (gcc, cc or clang)' : "no Node headers (node_api.h; Debian: apt-get install libnode-dev)";
  const stale = existsSync(stamp) && readFileSync(stamp, 'utf8').trim() !== sourceHash ? ' (built from older sources)' : '';
  const have = existsSync(out) ? `the committed ${out}${stale} stays` : 'the native backend is unavailable here, runs use wasm';
  console.log(`[build-addon] ${missing}: native kernels not built; ${have}`);
  process.exit(0);
}

// Per instruction set: flags and the name the addon reports. Non-x86 CPUs get the portable build only
// (arm64: 128-bit NEON through GCC's vector extensions).
const x86 = process.arch === 'x64';
const variants = x86
  ? [
      ['avx512', ['-mavx512f', '-mavx512bw', '-mavx512vl', '-mavx2', '-mfma']],
      ['avx2', ['-mavx2', '-mfma']],
      ['portable', []],
    ]
  : [['portable', []]];
const common = ['-O3', '-fno-math-errno', '-fPIC', '-std=gnu11', '-Wall', '-Werror', '-Wno-unused-function', '-fvisibility=hidden', '-Inative/addon', `-I${nodeInclude}`];
const tmp = mkdtempSync(join(tmpdir(), 'nad-addon-'));
try {
  const objects = [];
  for (const [isa, flags] of variants) {
    const o = join(tmp, `kernels-${isa}.o`);
    execFileSync(cc, [...common, `-DNAD_ISA=${isa}`, ...flags, '-c', 'native/addon/kernels.c', '-o', o], { stdio: 'inherit' });
    objects.push(o);
  }
  const addon = join(tmp, 'addon.o');
  execFileSync(cc, [...common, '-c', 'native/addon/addon.c', '-o', addon], { stdio: 'inherit' });
  mkdirSync(outDir, { recursive: true });
  const linked = join(tmp, 'nad-kernels.node');
  // Node resolves napi_* when it loads the addon: leave them undefined (macOS needs the flag to allow it).
  const undef = process.platform === 'darwin' ? ['-undefined', 'dynamic_lookup'] : [];
  execFileSync(cc, ['-shared', '-o', linked, addon, ...objects, '-lpthread', ...undef], { stdio: 'inherit' });
  renameSync(linked, out);
  writeFileSync(stamp, sourceHash + '\n');
  console.log(`[build-addon] wrote ${out} (${variants.map((v) => v[0]).join(', ')}) with ${cc}`);
} catch (e) {
  // From npm run build (--if-stale) a compiler that fails (another version's warnings, missing headers)
  // must not stop the bundles: say so in one line and keep what is there. Run directly, it fails.
  if (!process.argv.includes('--if-stale')) throw e;
  const have = existsSync(out) ? `the committed ${out} stays` : 'the native backend is unavailable here, runs use wasm';
  console.log(`[build-addon] ${cc} failed to build the native kernels (${String(e.message).split('\n')[0]}); ${have}`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

function findCompiler() {
  for (const c of [process.env.CC, 'gcc', 'cc', 'clang'].filter(Boolean)) {
    try {
      execFileSync(c, ['--version'], { stdio: 'ignore' });
      return c;
    } catch {
      // the next one
    }
  }
  return undefined;
}

// Node-API's headers: next to this Node (official tarballs: <prefix>/include/node), or the distribution's.
function findNodeHeaders() {
  const candidates = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((d) => existsSync(join(d, 'node_api.h')));
}
