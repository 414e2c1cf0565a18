// Run-time schema (valibot) of the run's event stream (run-events.ts), for events that arrive untyped:
// lines of metrics.jsonl (a run folder may be edited by hand, or cut short) and messages from the worker
// process. An event that does not match is skipped by the reader with a reason naming the field, and
// never reaches the reducer. The schema and the RunEvent type must agree both ways, or this does not
// compile. Kept apart from run-events.ts so that the webview bundles, which import the types, do not
// carry the validator.
import * as v from 'valibot';
import { count, listOf, parseWith, sameAs } from './schema-kit';
import type { RunEvent } from './run-events';
import type { HostToWorker, WorkerToHost } from './worker-protocol';

/** Longest string an event may carry (a log line, an error, a base64 image). */
const MAX_TEXT = 64 * 1024 * 1024;
const MAX_ITEMS = 10_000_000;

const text = v.pipe(v.string(), v.maxLength(MAX_TEXT));
const finite = v.pipe(v.number(), v.finite());
/**
 * ACC, ASR and the like: a number, NaN allowed (no backdoor test set), never Infinity. JSON (metrics.jsonl,
 * the worker's IPC channel) writes NaN as null, so null reads back as NaN.
 */
const metric = v.union([
  v.pipe(
    v.number(),
    v.check((x) => !(x === Infinity || x === -Infinity), 'must not be infinite'),
  ),
  v.pipe(
    v.null(),
    v.transform((): number => NaN),
  ),
]);
const list = <S extends v.GenericSchema>(item: S) => listOf(item, MAX_ITEMS);
const texts = list(text);
const numbers = list(metric);
const phase = text;

const resultRow = v.object({ model: text, acc: metric, asr: metric, ra: v.optional(metric) });

const sampleImages = v.object({
  height: count,
  width: count,
  channels: count,
  clean: texts,
  triggered: texts,
  labels: numbers,
  attackLabels: numbers,
  classNames: v.optional(texts),
});

const attentionSnapshot = v.object({
  model: text,
  epoch: v.pipe(v.number(), v.integer(), v.minValue(-1)),
  count,
  groups: list(v.object({ height: count, width: count })),
  clean: list(numbers),
  triggered: list(numbers),
  predictions: v.object({ clean: numbers, triggered: numbers }),
});

const point = v.object({ x: metric, y: metric });
const chartData = v.variant('kind', [
  v.object({ kind: v.literal('bar'), labels: texts, series: list(v.object({ name: text, values: numbers })) }),
  v.object({ kind: v.literal('xy'), series: list(v.object({ name: text, points: list(point) })) }),
  v.object({ kind: v.literal('matrix'), rowLabels: texts, colLabels: texts, values: list(numbers) }),
]);

const figureImage = v.object({
  caption: text,
  height: count,
  width: count,
  channels: count,
  pixels: text,
  marked: v.optional(v.boolean()),
});

export const runEventSchema = v.variant('type', [
  v.object({
    type: v.literal('started'),
    runId: text,
    runDir: text,
    kind: v.picklist(['train', 'finetune', 'erase', 'defend', 'eval', 'attention', 'imageAttention']),
    backend: text,
    resumed: v.boolean(),
  }),
  v.object({ type: v.literal('phase'), phase, label: text, epochs: count }),
  v.object({ type: v.literal('baseline'), phase, acc: metric, asr: metric }),
  v.object({
    type: v.literal('step'),
    phase,
    epoch: count,
    step: count,
    steps: count,
    loss: v.optional(metric),
    etaSeconds: v.optional(finite),
  }),
  v.object({
    type: v.literal('epoch'),
    phase,
    epoch: count,
    epochs: count,
    loss: metric,
    acc: metric,
    asr: metric,
    ra: v.optional(metric),
    lr: finite,
    seconds: finite,
    imagesPerSecond: metric,
    etaSeconds: v.optional(finite),
  }),
  v.object({ type: v.literal('table'), rows: list(resultRow) }),
  v.object({
    type: v.literal('series'),
    id: text,
    title: text,
    xLabel: text,
    points: list(v.object({ x: metric, acc: metric, asr: metric })),
  }),
  v.object({
    type: v.literal('chart'),
    id: text,
    title: text,
    xLabel: text,
    yLabel: text,
    chart: chartData,
    group: v.optional(v.picklist(['defense', 'classes'])),
    threshold: v.optional(v.object({ value: metric, label: text, axis: v.optional(v.picklist(['x', 'y'])) })),
  }),
  v.object({
    type: v.literal('images'),
    id: text,
    title: text,
    images: list(figureImage),
    group: v.optional(v.picklist(['defense', 'attack'])),
    columns: v.optional(v.literal(3)),
  }),
  v.object({ type: v.literal('facts'), title: text, facts: list(v.object({ label: text, value: text })) }),
  v.object({ type: v.literal('attention'), snapshot: attentionSnapshot }),
  v.object({ type: v.literal('samples'), samples: sampleImages }),
  v.object({ type: v.literal('log'), message: text }),
  v.object({ type: v.literal('ended'), state: v.picklist(['finished', 'failed', 'cancelled']), error: v.optional(text) }),
]) satisfies v.GenericSchema<unknown, RunEvent>;

/** What the worker process sends: the run's events, then what ended the request (worker-protocol.ts). */
export const workerToHostSchema = v.variant('type', [
  runEventSchema,
  v.object({
    type: v.literal('runDone'),
    result: v.object({
      runId: text,
      runDir: text,
      backend: text,
      acc: metric,
      asr: metric,
      ra: v.optional(metric),
      der: v.optional(metric),
      table: list(resultRow),
      modelPath: v.optional(text),
    }),
  }),
  v.object({ type: v.literal('done') }),
  v.object({
    type: v.literal('failed'),
    message: text,
    kind: v.picklist(['input', 'diverged', 'backend', 'internal']),
    file: v.optional(text),
  }),
  v.object({ type: v.literal('cancelled') }),
]) satisfies v.GenericSchema<unknown, WorkerToHost>;

/** What the host sends the worker (worker-protocol.ts). A job's config is an object here; the worker's
 * config builder checks it field by field. */
const anObject = v.custom<object>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), 'must be an object');
export const hostToWorkerSchema = v.variant('type', [
  v.object({
    type: v.literal('start'),
    request: v.object({
      job: v.variant('kind', [
        v.object({ kind: v.literal('job'), config: anObject }),
        v.object({ kind: v.literal('demo'), quick: v.boolean(), backend: text, seed: v.pipe(v.number(), v.integer()) }),
        v.object({ kind: v.literal('resume'), runDir: text }),
        v.object({ kind: v.literal('matrix'), file: text }),
        v.object({ kind: v.literal('preview'), config: anObject, samples: v.optional(count) }),
      ]),
      cwd: text,
      runsDir: text,
      slurm: v.optional(
        v.object({
          partition: v.optional(text),
          gpus: v.optional(count),
          time: v.optional(text),
          extraArgs: v.optional(texts),
        }),
      ),
    }),
  }),
  v.object({ type: v.literal('cancel') }),
]) satisfies v.GenericSchema<unknown, HostToWorker>;

sameAs<typeof runEventSchema, RunEvent>(true);
sameAs<typeof workerToHostSchema, WorkerToHost>(true);
sameAs<typeof hostToWorkerSchema, HostToWorker>(true);

/** A message from the host, or why it is not one. Never throws. */
export function parseHostMessage(raw: unknown): { readonly message: HostToWorker } | { readonly reason: string } {
  const p = parseWith(hostToWorkerSchema, raw);
  return 'value' in p ? { message: p.value } : p;
}

/** A message from the worker, or why it is not one. Never throws. */
export function parseWorkerMessage(raw: unknown): { readonly message: WorkerToHost } | { readonly reason: string } {
  const p = parseWith(workerToHostSchema, raw);
  return 'value' in p ? { message: p.value } : p;
}

export type ParsedEvent = { readonly event: RunEvent } | { readonly reason: string };

/** `raw` as a run event, or why it is not one (the first issues, with their fields). Never throws. */
export function parseRunEvent(raw: unknown): ParsedEvent {
  const p = parseWith(runEventSchema, raw);
  return 'value' in p ? { event: p.value } : p;
}

/**
 * A line of metrics.jsonl as a run event. Epoch lines written by 0.1.0 have neither `phase` nor `epochs`:
 * they are checked with every other field and come back without them, as before, for run-folder.ts to
 * give them the phase of the job's plan.
 */
export function parseStoredEvent(raw: unknown): ParsedEvent {
  const legacy = typeof raw === 'object' && raw !== null && (raw as { type?: unknown }).type === 'epoch' && !('phase' in raw);
  if (!legacy) return parseRunEvent(raw);
  const missing = { phase: '', ...('epochs' in raw ? {} : { epochs: 0 }) };
  const parsed = parseRunEvent({ ...raw, ...missing });
  if (!('event' in parsed)) return parsed;
  const event: Record<string, unknown> = { ...parsed.event };
  for (const key of Object.keys(missing)) delete event[key];
  return { event: event as unknown as RunEvent };
}
