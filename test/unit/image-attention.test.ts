// Attention maps of arbitrary PNG images (src/runs/image-attention.ts): a run folder of kind attention whose
// maps.json the editor reads, the backdoor visible in the predictions, and bad images refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { parseAttentionMaps } from '../../src/host/attention/maps-file';
import { saveModelFile, specMetadata } from '../../src/engine/checkpoint';
import { imageAttention, modelNamesOf, type ImageAttentionConfig } from '../../src/runs/jobs';
import { createModel } from '../../src/engine/models';
import { RunStore } from '../../src/runs/run-store';
import { CIFAR_DIR, SHARED, hasShared, tempFolder } from '../fixtures/data/paths';

const MODELS = join(SHARED, 'models', 'nad-reference');
const STUDENT = join(MODELS, 'wrn16-1_badnets-grid_target5.pth.tar');
const TEACHER = join(MODELS, 'wrn16-1_teacher-finetuned.pth.tar');
const skipShared = !(hasShared() && existsSync(STUDENT)) && '../shared absent';

/** Write image `index` of a CIFAR-10 binary as an RGB PNG; returns its label. */
function cifarPng(index: number, file: string): number {
  const bytes = readFileSync(join(CIFAR_DIR, 'test.bin'));
  const at = index * 3073;
  const png = new PNG({ width: 32, height: 32 });
  for (let p = 0; p < 1024; p++) {
    for (let c = 0; c < 3; c++) png.data[4 * p + c] = bytes[at + 1 + c * 1024 + p];
    png.data[4 * p + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(png));
  return bytes[at];
}

function config(images: string[], models: string[], labels?: number[]): ImageAttentionConfig {
  return {
    kind: 'imageAttention',
    backend: 'auto',
    images,
    models,
    trigger: { name: 'gridTrigger' },
    targetType: 'all2one',
    targetLabel: 5,
    labels,
  };
}

test(
  'maps of a PNG under the backdoored model and its teacher: the same maps.json layout, the backdoor in the predictions',
  { skip: skipShared },
  async () => {
    const tmp = tempFolder('image-attention');
    try {
      const image = join(tmp.dir, 'cat.png');
      const label = cifarPng(0, image);
      assert.equal(label, 3, 'the first test image is a cat');
      const r = await imageAttention(config([image], [STUDENT, TEACHER]), { cwd: tmp.dir });
      const parsed = parseAttentionMaps(readFileSync(r.mapsFile, 'utf8'));
      assert.ok('maps' in parsed, 'problem' in parsed ? parsed.problem : '');
      const { maps } = parsed;
      assert.deepEqual(maps.image, { height: 32, width: 32, channels: 3 });
      assert.deepEqual(
        maps.snapshots.map((s) => s.model),
        ['wrn16-1_badnets-grid_target5', 'wrn16-1_teacher-finetuned'],
      );
      assert.deepEqual(
        maps.snapshots.map((s) => s.groups.map((g) => g.height)),
        [
          [32, 16, 8],
          [32, 16, 8],
        ],
      );
      // No label given: unknown (-1); all2one's attack label is the target whatever the image.
      assert.deepEqual(maps.labels, [-1]);
      assert.deepEqual(maps.attackLabels, [5]);
      assert.deepEqual(r.predictions, [
        { model: 'wrn16-1_badnets-grid_target5', clean: [3], triggered: [5] },
        { model: 'wrn16-1_teacher-finetuned', clean: [3], triggered: [3] },
      ]);
      // The stored image is the PNG's pixels, and the triggered one differs only in the trigger's corner.
      const clean = Buffer.from(maps.images.clean[0], 'base64');
      const triggered = Buffer.from(maps.images.triggered[0], 'base64');
      const changed = new Set<number>();
      for (let i = 0; i < clean.length; i++) if (clean[i] !== triggered[i]) changed.add(Math.floor(i / 3));
      for (const p of changed) assert.ok(p % 32 >= 29 && Math.floor(p / 32) >= 29, `pixel ${p} changed outside the grid trigger`);
      assert.ok(changed.size > 0);
      const run = new RunStore(tmp.dir).read(r.runId);
      assert.ok(!('problem' in run));
      assert.equal(run.status.state, 'finished');
      assert.equal(run.status.kind, 'imageAttention');
      assert.deepEqual(run.config['images'], [image]);
      assert.ok(existsSync(join(r.runDir, 'attention', 'wrn16-1_badnets-grid_target5', 'triggered-0-group1.png')));
    } finally {
      tmp.remove();
    }
  },
);

test('an image of another size is refused, naming it and both sizes; the run is marked failed', { skip: skipShared }, async () => {
  const tmp = tempFolder('image-attention-size');
  try {
    const image = join(tmp.dir, 'wide.png');
    writeFileSync(image, PNG.sync.write(new PNG({ width: 40, height: 32 })));
    await assert.rejects(imageAttention(config([image], [STUDENT]), { cwd: tmp.dir }), (e: Error) => {
      assert.match(e.message, /wide\.png: the image is 40x32 but the model takes 32x32 images/);
      return true;
    });
    const [run] = new RunStore(tmp.dir).list().runs;
    assert.equal(run.status.state, 'failed');
    assert.match(run.status.error ?? '', /40x32/);
  } finally {
    tmp.remove();
  }
});

test('a grayscale model takes gray PNGs (stored with one channel) and refuses colour ones', async () => {
  const tmp = tempFolder('image-attention-gray');
  try {
    const model = createModel({ arch: 'cnn', numClasses: 10, inChannels: 1, imageSize: 28 }, 1);
    const file = join(tmp.dir, 'digits.safetensors');
    await saveModelFile(file, model.params.toStateDict(), specMetadata(model.spec));
    model.dispose();
    const gray = new PNG({ width: 28, height: 28 });
    for (let p = 0; p < 28 * 28; p++) {
      const v = (p * 7) % 256;
      gray.data.set([v, v, v, 255], 4 * p);
    }
    const grayFile = join(tmp.dir, 'gray.png');
    writeFileSync(grayFile, PNG.sync.write(gray));
    const r = await imageAttention(config([grayFile], [file], [4]), { cwd: tmp.dir });
    const parsed = parseAttentionMaps(readFileSync(r.mapsFile, 'utf8'));
    assert.ok('maps' in parsed);
    assert.deepEqual(parsed.maps.image, { height: 28, width: 28, channels: 1 });
    assert.deepEqual(parsed.maps.labels, [4]);
    gray.data[0] = 255;
    gray.data[1] = 0;
    const colourFile = join(tmp.dir, 'colour.png');
    writeFileSync(colourFile, PNG.sync.write(gray));
    await assert.rejects(
      imageAttention(config([colourFile], [file]), { cwd: tmp.dir }),
      /colour\.png: the model takes grayscale images but this image is in colour/,
    );
  } finally {
    tmp.remove();
  }
});

test('model names: a run’s model is named after its run; files that would share a name are told apart', () => {
  const runs = '/w/.nad/runs';
  assert.deepEqual(
    modelNamesOf([
      `${runs}/20261125-201106-demo-backdoored-9c4a/model/model.safetensors`,
      `${runs}/20261125-201134-demo-teacher-c7e4/model/model.safetensors`,
      `${runs}/20261125-201147-demo-nad-eb26/model/teacher.safetensors`,
      '/models/a/wrn16-1.pth.tar',
      '/models/b/wrn16-1.pth',
      '/models/model/model.safetensors',
    ]),
    ['demo-backdoored', 'demo-teacher', 'demo-nad-teacher', 'wrn16-1', 'wrn16-1-2', 'model'],
  );
});
