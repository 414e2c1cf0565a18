// A full disk mid-run: the write that fails names its file and the free space (DiskFullError, an InputError:
// exit code 2), the run ends failed where a few bytes can still be written, and the files written before stay
// intact. /dev/full (every write: ENOSPC) stands in for the full disk in the unit test; the end-to-end test
// fills a real 300 KB tmpfs during `nad train` where this machine lets the test mount one (root), else it says
// why it skips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCheckpoint } from '../../src/engine/checkpoint';
import { DiskFullError, RunStore, writeFileAtomic } from '../../src/runs/run-store';
import { writeSmallMnist } from '../integration/fixtures/small-mnist';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');

test(
  'a write that finds the disk full names the file and the free space; earlier files are intact',
  { skip: !existsSync('/dev/full') && 'no /dev/full on this system' },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'nad-full-'));
    try {
      const store = new RunStore(dir);
      const run = store.create('train', { kind: 'train', name: 'full' }, 'full');
      run.appendMetric({ type: 'log', message: 'before' });
      const metrics = join(run.dir, 'metrics.jsonl');
      const before = readFileSync(metrics, 'utf8');
      // metrics.jsonl is appended to: point it at /dev/full.
      unlinkSync(metrics);
      symlinkSync('/dev/full', metrics);
      assert.throws(
        () => run.appendMetric({ type: 'log', message: 'after' }),
        (e: unknown) =>
          e instanceof DiskFullError &&
          e.file === metrics &&
          /no space left on the device while writing this file \(.+ free there\)/.test(e.message),
      );
      unlinkSync(metrics);
      assert.equal(before.split('\n')[0].includes('before'), true);
      // An atomic write whose temp file cannot be written leaves the target as it was, and no temp file.
      const target = join(dir, 'kept.json');
      writeFileAtomic(target, '{"a":1}');
      assert.throws(
        () => writeFileAtomic(join('/dev/full', 'x.json'), 'data'),
        (e: unknown) => e instanceof Error,
      );
      assert.equal(readFileSync(target, 'utf8'), '{"a":1}');
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.endsWith('.tmp')),
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

function mountTmpfs(dir: string, size: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `cannot mount a tmpfs here (${(r.stderr || r.error?.message || 'not permitted').trim()})`;
}

test('nad train on a disk that fills up mid-run: exit code 2, the file and free space named, the run marked failed, earlier epochs intact', async (t) => {
  if (!existsSync(CLI)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const work = mkdtempSync(join(tmpdir(), 'nad-full-e2e-'));
  const disk = join(work, 'disk');
  mkdirSync(disk);
  // The small CNN's epoch checkpoint is ~260 KB and is replaced atomically (a temp file, then a rename), so a
  // 450 KB disk holds the first one and fills on the second epoch's.
  const why = mountTmpfs(disk, '450k');
  if (why) {
    t.skip(why);
    rmSync(work, { recursive: true, force: true });
    return;
  }
  try {
    const runs = join(disk, 'runs');
    mkdirSync(runs);
    const data = writeSmallMnist(join(work, 'digits'), { train: 10, test: 5, repoRoot: ROOT });
    const r = spawnSync(process.execPath, [CLI, 'train', '--data', data, '--epochs', '50', '--runs-dir', runs, '--name', 'fills', '-q'], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    assert.equal(r.status, 2, `exit ${r.status}: ${r.stderr.slice(-800)}`);
    assert.match(r.stderr, /no space left on the device while writing this file \([\d.]+ (bytes|MB|GB) free there\)/);
    assert.match(r.stderr, new RegExp(runs.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const [id] = readdirSync(runs).filter((d) => !d.startsWith('.'));
    const status = JSON.parse(readFileSync(join(runs, id, 'status.json'), 'utf8')) as { state: string; error?: string; lastEpoch?: number };
    assert.ok((status.lastEpoch ?? 0) >= 1, `the first epoch was saved (status: ${JSON.stringify(status)})`);
    // The last checkpoint that was saved is whole: it loads (a short write is finished or refused, never renamed into place).
    await readCheckpoint(join(runs, id, 'model', 'model.safetensors'));
    assert.deepEqual(
      readdirSync(join(runs, id, 'model')).filter((f) => f.endsWith('.tmp')),
      [],
      'temp files left behind',
    );
    // Marked failed where status.json could still be written; otherwise it reads as interrupted (the process is gone).
    const read = new RunStore('', runs).read(id);
    assert.ok(!('problem' in read), 'the run folder is readable');
    assert.ok(['failed', 'interrupted'].includes(read.status.state), `state ${read.status.state}`);
    if (status.state === 'failed') assert.match(status.error ?? '', /no space left/);
    // Every metrics line written before is whole JSON.
    for (const line of readFileSync(join(runs, id, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean))
      JSON.parse(line);
  } finally {
    spawnSync('umount', [disk]);
    rmSync(work, { recursive: true, force: true });
  }
});
