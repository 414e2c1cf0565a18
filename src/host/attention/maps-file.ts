// Reads attention/maps.json defensively: a hand-edited or truncated file gives one clear sentence
// naming the field and what is wrong, which the editor shows instead of a blank or broken view.
import type { AttentionMapsData, AttentionSnapshotData, EpochMapsData } from '../../shared/attention-protocol';

export type ParsedMaps = { readonly maps: AttentionMapsData } | { readonly problem: string };

class MapsProblem extends Error {}

function fail(message: string): never {
  throw new MapsProblem(message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function positiveInt(v: unknown, where: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(`${where} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

function intArray(v: unknown, length: number, where: string): number[] {
  if (!Array.isArray(v)) fail(`${where} must be a list of ${length} integers`);
  if (v.length !== length) fail(`${where} has ${v.length} entries, expected ${length} (one per image)`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) fail(`${where}[${i}] must be an integer, got ${JSON.stringify(x)}`);
  });
  return v as number[];
}

function base64Bytes(s: string): number {
  const clean = s.replace(/=+$/, '');
  return Math.floor((clean.length * 3) / 4);
}

function imageList(v: unknown, count: number, bytes: number, where: string): string[] {
  if (!Array.isArray(v) || v.length !== count) fail(`${where} must be a list of ${count} base64 images`);
  v.forEach((s, i) => {
    if (typeof s !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) fail(`${where}[${i}] is not base64 text`);
    if (base64Bytes(s) !== bytes) fail(`${where}[${i}] holds ${base64Bytes(s)} bytes, expected ${bytes} (height x width x channels)`);
  });
  return v as string[];
}

function mapLists(v: unknown, groups: AttentionSnapshotData['groups'], count: number, where: string): number[][] {
  if (!Array.isArray(v) || v.length !== groups.length) fail(`${where} must hold one list of values per group (${groups.length})`);
  return v.map((values: unknown, g) => {
    const expected = count * groups[g].height * groups[g].width;
    if (!Array.isArray(values)) fail(`${where}[${g}] must be a list of numbers`);
    if (values.length !== expected)
      fail(`${where}[${g}] has ${values.length} values, expected ${expected} (${count} images x ${groups[g].height} x ${groups[g].width})`);
    for (let i = 0; i < values.length; i++) {
      const x: unknown = values[i];
      if (typeof x !== 'number' || !Number.isFinite(x)) fail(`${where}[${g}][${i}] is not a finite number (${JSON.stringify(x)})`);
    }
    return values as number[];
  });
}

function snapshot(v: unknown, count: number, where: string): AttentionSnapshotData {
  if (!isObject(v)) fail(`${where} must be an object`);
  if (typeof v.model !== 'string' || !v.model.trim()) fail(`${where}.model must be a model name`);
  const epoch = v.epoch ?? -1;
  if (typeof epoch !== 'number' || !Number.isInteger(epoch)) fail(`${where}.epoch must be an integer`);
  if (v.count !== count) fail(`${where}.count is ${JSON.stringify(v.count)} but the file has ${count} images`);
  if (!Array.isArray(v.groups) || v.groups.length === 0) fail(`${where}.groups must list the attention maps' sizes`);
  const groups = v.groups.map((g: unknown, k) => {
    if (!isObject(g)) fail(`${where}.groups[${k}] must be { height, width }`);
    return { height: positiveInt(g.height, `${where}.groups[${k}].height`), width: positiveInt(g.width, `${where}.groups[${k}].width`) };
  });
  const predictions = v.predictions;
  if (!isObject(predictions)) fail(`${where}.predictions must be { clean, triggered }`);
  return {
    model: v.model,
    epoch,
    count,
    groups,
    clean: mapLists(v.clean, groups, count, `${where}.clean`),
    triggered: mapLists(v.triggered, groups, count, `${where}.triggered`),
    predictions: {
      clean: intArray(predictions.clean, count, `${where}.predictions.clean`),
      triggered: intArray(predictions.triggered, count, `${where}.predictions.triggered`),
    },
  };
}

/** Validate the text of a maps.json; `problem` says what is wrong (without the file name: the caller adds it). */
export function parseAttentionMaps(text: string): ParsedMaps {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: `not valid JSON (${(e as Error).message})` };
  }
  try {
    if (!isObject(raw)) fail('must be a JSON object');
    if (raw.version !== 1) fail(`version ${JSON.stringify(raw.version)} is not one this extension reads (expected 1)`);
    const image = raw.image;
    if (!isObject(image)) fail('image must be { height, width, channels }');
    const dims = {
      height: positiveInt(image.height, 'image.height'),
      width: positiveInt(image.width, 'image.width'),
      channels: positiveInt(image.channels, 'image.channels'),
    };
    if (dims.channels !== 1 && dims.channels !== 3) fail(`image.channels must be 1 or 3, got ${dims.channels}`);
    if (!Array.isArray(raw.labels) || raw.labels.length === 0) fail('labels must list one class per image');
    const count = raw.labels.length;
    const labels = intArray(raw.labels, count, 'labels');
    const attackLabels = raw.attackLabels === undefined ? labels.map(() => -1) : intArray(raw.attackLabels, count, 'attackLabels');
    let classNames: string[] | null = null;
    if (raw.classNames !== null && raw.classNames !== undefined) {
      if (!Array.isArray(raw.classNames) || raw.classNames.some((n) => typeof n !== 'string'))
        fail('classNames must be a list of names or null');
      classNames = raw.classNames as string[];
    }
    const images = raw.images;
    if (!isObject(images)) fail('images must be { clean, triggered }');
    const bytes = dims.height * dims.width * dims.channels;
    const imgs = {
      clean: imageList(images.clean, count, bytes, 'images.clean'),
      triggered: imageList(images.triggered, count, bytes, 'images.triggered'),
    };
    if (!Array.isArray(raw.snapshots) || raw.snapshots.length === 0) fail('snapshots must list at least one model');
    const snapshots = raw.snapshots.map((s: unknown, i) => snapshot(s, count, `snapshots[${i}]`));
    return { maps: { version: 1, image: dims, labels, attackLabels, classNames, images: imgs, snapshots } };
  } catch (e) {
    if (e instanceof MapsProblem) return { problem: e.message };
    throw e;
  }
}

/**
 * Validate the text of attention/epochs.jsonl against the maps.json it sits beside (`count` images). A bad
 * line (torn by a crash, edited by hand) is left out and reported: `problem` names `file`, the line and what
 * is wrong (the first such line, and how many more). An empty file gives no snapshots and no problem.
 */
export function parseEpochMaps(text: string, count: number, file: string): EpochMapsData {
  const snapshots: AttentionSnapshotData[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (e) {
      const torn = i === lines.length - 1 || !line.trimEnd().endsWith('}');
      problems.push(`line ${i + 1}: ${torn ? 'cut off (the run stopped while writing it)' : `not valid JSON (${(e as Error).message})`}`);
      return;
    }
    try {
      const s = snapshot(raw, count, 'snapshot');
      if (s.epoch < 1) fail(`snapshot.epoch must be 1 or more, got ${s.epoch}`);
      snapshots.push(s);
    } catch (e) {
      if (!(e instanceof MapsProblem)) throw e;
      problems.push(`line ${i + 1}: ${e.message}`);
    }
  });
  if (problems.length === 0) return { snapshots };
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more bad line${problems.length > 2 ? 's' : ''})` : '';
  return { snapshots, problem: `${file} ${problems[0]}${more}` };
}
