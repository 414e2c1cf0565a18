// The soak's judge (test/soak/samples.ts) on made-up series: a leak after the run manager's cap is caught, the
// heap is not judged while the cap still fills, and a worker's series is judged within its run kind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, taskCapFilling, type SoakSample } from '../soak/samples';

const KINDS = ['train', 'defend', 'erase', 'eval'];
const WORKER_RSS: Record<string, number> = { train: 230, defend: 228, erase: 245, eval: 214 };

function samples(n: number, over: (run: number, kind: string) => Partial<SoakSample> = () => ({})): SoakSample[] {
  return Array.from({ length: n }, (_, i) => {
    const run = i + 1;
    const kind = KINDS[i % KINDS.length];
    return {
      run,
      kind,
      seconds: 20,
      hostRssMb: 140,
      hostHeapMb: 45,
      hostHeapTotalMb: 60,
      hostExternalMb: 5,
      hostFds: 41,
      workerPid: 1000 + run,
      workerPeakRssMb: WORKER_RSS[kind],
      workerFds: 60,
      workerPolls: 10,
      tasksKept: Math.min(run, 20),
      lastSnapshotKb: 100,
      panelsOpen: 0,
      ...over(run, kind),
    };
  });
}

const failed = (s: SoakSample[]): string[] =>
  judge(s)
    .filter((v) => !v.ok)
    .map((v) => `${v.limit.series} ${v.limit.what}`);

test('flat series of four run kinds pass, although the worker peak differs by kind', () => {
  assert.deepEqual(failed(samples(48)), []);
});

test('a heap leak of 0.5 MB per run after the cap fails; while the cap fills the heap is not judged', () => {
  const leak = samples(48, (run) => ({ hostHeapMb: 45 + 0.5 * run }));
  assert.ok(!taskCapFilling(leak));
  assert.ok(failed(leak).includes('hostHeapMb slopeSecondHalf'), failed(leak).join(', '));
  const short = samples(16, (run) => ({ hostHeapMb: 45 + 0.5 * run }));
  assert.ok(taskCapFilling(short));
  assert.ok(!judge(short).some((v) => v.limit.series === 'hostHeapMb'));
  assert.ok(
    judge(short).some((v) => v.limit.series === 'hostFds'),
    'the other host limits are still judged',
  );
});

test('a worker that grows in one kind of run fails, judged within that kind', () => {
  const grows = samples(48, (run, kind) => (kind === 'erase' ? { workerPeakRssMb: 245 + 3 * run } : {}));
  assert.ok(failed(grows).includes('workerPeakRssMb slopeSecondHalf'), failed(grows).join(', '));
});
