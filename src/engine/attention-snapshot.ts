// Attention maps of a few fixed test images, clean and triggered, per group: streamed to the panel
// during a run (the images once at its start, the maps every epoch); the run layer stores the final
// ones (src/runs/attention-files.ts).
import * as tf from '@tensorflow/tfjs-core';
import { attentionMap } from './attention';
import { toFloatBatch } from './data/augment';
import type { Model } from './models';
import type { AttentionSnapshot, SampleImages } from '../shared/run-events';
import type { ImageDataset } from './types';

/** The same images without and with the trigger (non-target-class images only). */
export interface AttentionSamples {
  readonly clean: ImageDataset;
  readonly triggered: ImageDataset;
}

/** Attention maps (per group) and predictions of `model` on a batch of images. */
export function attentionOf(
  model: Model,
  ds: ImageDataset,
  p = 2,
): { maps: Float32Array[]; shapes: Array<{ height: number; width: number }>; predictions: Int32Array } {
  const idx = Int32Array.from({ length: ds.count }, (_, i) => i);
  const x = toFloatBatch(ds, idx, new Float32Array(ds.count * ds.height * ds.width * ds.channels));
  const outs = tf.tidy(() => {
    const r = model.forward(tf.tensor4d(x, [ds.count, ds.height, ds.width, ds.channels]), false);
    return { maps: r.groups.map((g) => attentionMap(g, p)), pred: tf.argMax(r.logits, 1) };
  });
  const maps = outs.maps.map((m) => m.dataSync() as Float32Array);
  const shapes = outs.maps.map((m) => ({ height: m.shape[1], width: m.shape[2] }));
  const predictions = outs.pred.dataSync() as Int32Array;
  tf.dispose([outs.maps, outs.pred]);
  return { maps, shapes, predictions };
}

const round = (v: number): number => Number(v.toPrecision(5));

export function attentionSnapshot(name: string, model: Model, samples: AttentionSamples, epoch: number): AttentionSnapshot {
  const c = attentionOf(model, samples.clean);
  const t = attentionOf(model, samples.triggered);
  return {
    model: name,
    epoch,
    count: samples.clean.count,
    groups: c.shapes,
    clean: c.maps.map((m) => Array.from(m, round)),
    triggered: t.maps.map((m) => Array.from(m, round)),
    predictions: { clean: Array.from(c.predictions), triggered: Array.from(t.predictions) },
  };
}

/**
 * Write attention/maps.json (all snapshots and the sample images' labels) and one PNG per model, input,
 * image and group: attention/<model>/<clean|triggered>-<image>-group<g>.png. Returns the number of files.
 */
/** The samples' pixels and labels, encoded once for the live panel (at run start) and for maps.json. */
export function sampleImages(samples: AttentionSamples): SampleImages {
  const { height, width, channels } = samples.clean;
  const size = height * width * channels;
  const encode = (ds: ImageDataset): string[] =>
    Array.from({ length: ds.count }, (_, k) => Buffer.from(ds.images.subarray(k * size, (k + 1) * size)).toString('base64'));
  return {
    height,
    width,
    channels,
    clean: encode(samples.clean),
    triggered: encode(samples.triggered),
    labels: Array.from(samples.clean.labels),
    attackLabels: Array.from(samples.triggered.labels),
    ...(samples.clean.classNames ? { classNames: samples.clean.classNames } : {}),
  };
}
