// A live run's attention maps have their images from the start: every job announces its sample images
// (event `samples`) before its first attention snapshot, they are the images maps.json stores at the end,
// and the panel's snapshot folded from the live messages has them as the finished run's folder does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRunSnapshot } from '../../src/runs/run-folder';
import { initBackend } from '../../src/engine/backend';
import { BADNET_TRAINING, DEFAULT_BACKDOOR, FINETUNE_TRAINING } from '../../src/runs/config';
import { cleanSubset, loadDataset } from '../../src/engine/data';
import { runJob } from '../../src/runs/jobs';
import type { RunEvent } from '../../src/shared/run-events';
import { applyPanelMessage, type HostToPanel, type PanelSnapshot } from '../../src/shared/panel-protocol';
import { writeIdx } from '../fixtures/data/idx';
import { tempFolder } from '../fixtures/data/paths';

test('a finetuning run sends its sample images before its first attention maps; they are the images of maps.json and of the finished panel', async () => {
  await initBackend('auto');
  const tmp = tempFolder('live-attention');
  try {
    const train = cleanSubset(await loadDataset('mnist', { split: 'train' }), { count: 300, seed: 1 });
    const testSet = cleanSubset(await loadDataset('mnist', { split: 'test' }), { count: 100, seed: 1 });
    writeIdx(tmp.dir, 'train', train);
    writeIdx(tmp.dir, 't10k', testSet);
    const common = { backend: 'auto' as const, seed: 0, test: tmp.dir, backdoor: DEFAULT_BACKDOOR };
    const trainEvents: RunEvent[] = [];
    const trained = await runJob(
      {
        ...common,
        kind: 'train',
        name: 'live-backdoored',
        data: tmp.dir,
        model: 'auto',
        training: { ...BADNET_TRAINING, epochs: 1, batchSize: 32 },
      },
      { cwd: tmp.dir, onEvent: (e) => trainEvents.push(e) },
    );
    // The training run has no live maps, but its images arrive at its start too, once.
    assert.equal(trainEvents.filter((e) => e.type === 'samples').length, 1);

    const events: RunEvent[] = [];
    const tuned = await runJob(
      {
        ...common,
        kind: 'finetune',
        name: 'live-teacher',
        model: trained.modelPath as string,
        data: tmp.dir,
        cleanCount: 64,
        training: { ...FINETUNE_TRAINING, epochs: 2, batchSize: 32, augment: false },
      },
      { cwd: tmp.dir, onEvent: (e) => events.push(e) },
    );
    const types = events.map((e) => e.type);
    const first = types.indexOf('samples');
    assert.equal(types.filter((t) => t === 'samples').length, 1, `events: ${types.join(', ')}`);
    const maps = types.indexOf('attention');
    assert.ok(maps > 0, 'no live attention snapshot');
    assert.ok(first >= 0 && first < maps, `samples at ${first}, first attention map at ${maps}`);
    assert.ok(first < types.indexOf('step'), 'the images came after training started');
    const live = (events[first] as Extract<RunEvent, { type: 'samples' }>).samples;

    // The same images (and labels) as the run stores with its final maps.
    const file = JSON.parse(readFileSync(join(tuned.runDir, 'attention', 'maps.json'), 'utf8')) as {
      image: { height: number; width: number; channels: number };
      labels: number[];
      attackLabels: number[];
      images: { clean: string[]; triggered: string[] };
    };
    assert.deepEqual({ height: live.height, width: live.width, channels: live.channels }, file.image);
    assert.deepEqual(live.clean, file.images.clean);
    assert.deepEqual(live.triggered, file.images.triggered);
    assert.deepEqual(live.labels, file.labels);
    assert.deepEqual(live.attackLabels, file.attackLabels);
    // Real test digits of other classes than the target, and their triggered copies: same pixels except
    // in the grid trigger's bottom-right corner.
    assert.equal(live.clean.length, 4);
    assert.ok(
      live.labels.every((l) => l !== DEFAULT_BACKDOOR.targetLabel),
      `labels ${live.labels.join(', ')}`,
    );
    assert.ok(live.attackLabels.every((l) => l === DEFAULT_BACKDOOR.targetLabel));
    for (let k = 0; k < live.clean.length; k++) {
      const clean: Buffer = Buffer.from(live.clean[k], 'base64');
      const triggered: Buffer = Buffer.from(live.triggered[k], 'base64');
      assert.equal(clean.length, 28 * 28);
      assert.ok(
        clean.some((v) => v > 128),
        'a blank image',
      );
      const changed: number[] = [];
      for (let p = 0; p < clean.length; p++) if (clean[p] !== triggered[p]) changed.push(p);
      assert.ok(changed.length > 0, `image ${k}: the trigger changed nothing`);
      assert.ok(
        changed.every((p) => p % 28 >= 24 && Math.floor(p / 28) >= 24),
        `image ${k}: pixels outside the trigger's corner changed`,
      );
    }

    // The panel: folding the live messages as the run manager does gives the images before the first
    // map, and the same images as the finished folder shows.
    const start = readRunSnapshot(tuned.runDir);
    assert.ok(!('problem' in start));
    let panel: PanelSnapshot = { ...start, samples: undefined, attention: [] };
    let imagesWhenFirstMap: PanelSnapshot['samples'];
    for (const e of events) {
      if (e.type !== 'samples' && e.type !== 'attention' && e.type !== 'table') continue;
      const msg: HostToPanel = { type: 'event', event: e };
      panel = applyPanelMessage(panel, msg);
      if (e.type === 'attention' && imagesWhenFirstMap === undefined) imagesWhenFirstMap = panel.samples;
    }
    assert.deepEqual(imagesWhenFirstMap, live);
    assert.deepEqual(panel.samples, start.samples);
    assert.ok(panel.attention.some((s) => s.model === 'teacher' && s.epoch > 0));
  } finally {
    tmp.remove();
  }
});
