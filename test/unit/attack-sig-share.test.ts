// SIG's clean-label share: BackdoorBench's rule (round(p * N) images of the target class, p of the WHOLE
// training set; counts from Python's round, test/fixtures/attacks/make_sig_share_fixture.py), capped at the
// class; the NAD paper's DatasetBD rule kept as `--sig-pick datasetBD`; on the embedded digits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { roundHalfEven, sig, sigTargetClassPicks } from '../../src/engine/attacks/sig';
import { loadDataset } from '../../src/engine/data';
import { checkParams } from '../../src/engine/params';
import { applyTrigger, poisonTrainingSet } from '../../src/engine/triggers';
import { InputError, type ImageDataset } from '../../src/engine/types';
import type { EngineEvent } from '../../src/shared/run-events';

const fixture = JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'attacks', 'sig-share.json'), 'utf8')) as {
  cases: { pratio: number; n: number; count: number }[];
};
let digits: ImageDataset | undefined;
const mnist = async (): Promise<ImageDataset> => (digits ??= await loadDataset('mnist', { split: 'train' }));
const params = (given: Record<string, unknown> = {}) => checkParams(sig.params, given, 'attack sig');

test("the count is Python's round(p * N), halves to even", () => {
  for (const c of fixture.cases) assert.equal(roundHalfEven(c.pratio * c.n), c.count, `round(${c.pratio} * ${c.n})`);
});

test('targetClass (default): round(p * N) target-class images, labels kept, the rest untouched', async () => {
  const ds = await mnist();
  const target = 5;
  const inClass = ds.labels.filter((l) => l === target).length;
  const p = 0.05;
  const want = roundHalfEven(p * ds.count);
  assert.ok(want < inClass, `the digits have ${inClass} of class ${target}, ${want} wanted`);
  const out = await sig.poison({ train: ds, params: params(), targetType: 'cleanLabel', targetLabel: target, injectPortion: p, seed: 3 });
  assert.equal(out.poisonedIndices.length, want);
  assert.deepEqual(out.labels, ds.labels.slice(0, ds.count));
  const picked = new Set(out.poisonedIndices);
  assert.equal(picked.size, want);
  for (let k = 1; k < out.poisonedIndices.length; k++) assert.ok(out.poisonedIndices[k - 1] < out.poisonedIndices[k], 'ascending');
  // Exactly the picks changed, each as the trigger stamps it.
  const stamped = applyTrigger(ds, sig.trigger(params()), { indices: out.poisonedIndices });
  assert.deepEqual(out.images, stamped.images);
  for (const i of out.poisonedIndices) assert.equal(ds.labels[i], target);
  // The same seed picks the same images; another seed others.
  const again = await sig.poison({ train: ds, params: params(), targetType: 'cleanLabel', targetLabel: target, injectPortion: p, seed: 3 });
  assert.deepEqual(again.poisonedIndices, out.poisonedIndices);
  assert.notDeepEqual(sigTargetClassPicks(ds.labels, ds.count, target, p, 4), out.poisonedIndices);
  // The picks are the first of a seeded permutation restricted to the class.
  assert.deepEqual(out.poisonedIndices, sigTargetClassPicks(ds.labels, ds.count, target, p, 3));
});

test('targetClass: more than the class asks for the whole class, with a log line', async () => {
  const ds = await mnist();
  const inClass = ds.labels.filter((l) => l === 2).length;
  const events: EngineEvent[] = [];
  const out = await sig.poison({
    train: ds,
    params: params(),
    targetType: 'cleanLabel',
    targetLabel: 2,
    injectPortion: 0.5,
    seed: 1,
    emit: (e) => events.push(e),
  });
  assert.equal(out.poisonedIndices.length, inClass);
  assert.ok(events.some((e) => e.type === 'log' && /all of them/.test(e.message)));
});

test('datasetBD keeps the NAD paper rule: floor(p * N) drawn from all, only the target class stamped', async () => {
  const ds = await mnist();
  const p = 0.1;
  const out = await sig.poison({
    train: ds,
    params: params({ sigPick: 'datasetBD' }),
    targetType: 'cleanLabel',
    targetLabel: 5,
    injectPortion: p,
    seed: 3,
  });
  const old = poisonTrainingSet(ds, {
    trigger: sig.trigger(params()),
    targetType: 'cleanLabel',
    targetLabel: 5,
    injectPortion: p,
    seed: 3,
  });
  assert.deepEqual(out.poisonedIndices, old.poisonedIndices);
  assert.ok(out.poisonedIndices.length < Math.floor(ds.count * p) / 3, `${out.poisonedIndices.length}: about p / classes`);
  const bb = await sig.poison({ train: ds, params: params(), targetType: 'cleanLabel', targetLabel: 5, injectPortion: p, seed: 3 });
  assert.ok(bb.poisonedIndices.length > out.poisonedIndices.length);
});

test('bad input names the parameter', async () => {
  const ds = await mnist();
  assert.throws(
    () => params({ sigPick: 'all' }),
    (e: unknown) => e instanceof InputError && /sigPick/.test(e.message),
  );
  await assert.rejects(
    sig.poison({ train: ds, params: params(), targetType: 'cleanLabel', targetLabel: 10, injectPortion: 0.1, seed: 0 }),
    (e: unknown) => e instanceof InputError && /target label 10/.test(e.message),
  );
  await assert.rejects(
    sig.poison({ train: ds, params: params(), targetType: 'cleanLabel', targetLabel: 1, injectPortion: 1.5, seed: 0 }),
    (e: unknown) => e instanceof InputError && /inject portion/.test(e.message),
  );
});
