// Run-time schemas (valibot) of the messages the webview pages send to the extension host. A page's
// script runs in a sandboxed iframe and may show content derived from files of strangers, so the host
// treats what it posts as untrusted: each message is checked against its page's schema before any
// handler sees it, and a malformed one is logged and dropped (src/host/webview-messages.ts).
// Each schema is tied to its TypeScript type both ways (`Same` below): a message type the schema would
// refuse, or a schema accepting what the type does not allow, fails to compile. Strings that name files (dir) are bounded in length; the
// host still checks that they are run folders it listed before acting on them.
import * as v from 'valibot';
import { count, listOf, parseWith, sameAs } from './schema-kit';

export { messagePreview } from './schema-kit';
import type { AttentionViewMessage } from './attention-protocol';
import type { MatrixViewMessage } from './matrix-protocol';
import type { PanelToHost } from './panel-protocol';
import type { PreviewViewMessage } from './preview-protocol';
import type { CompareViewMessage, HistoryViewMessage } from './history-protocol';

/** Longest string a message may carry (a path, a log line, a caption). */
export const MAX_TEXT = 32_768;
/** Longest list a message may carry (rows of a table, captions). */
export const MAX_ITEMS = 10_000;

const text = v.pipe(v.string(), v.maxLength(MAX_TEXT));
const texts = listOf(text, MAX_ITEMS);
const rows = listOf(texts, MAX_ITEMS);
const ready = v.object({ type: v.literal('ready') });

const figureCounts = v.object({ charts: count, chartBars: count, matrices: count, images: count, facts: count });

export const panelToHostSchema = v.variant('type', [
  ready,
  v.object({ type: v.literal('copy'), format: v.picklist(['markdown', 'csv']), text: v.pipe(v.string(), v.maxLength(16 * MAX_TEXT)) }),
  v.object({ type: v.literal('action'), action: v.picklist(['cancel', 'resume', 'rerun', 'rerunWithChanges', 'revealFolder', 'showLog']) }),
  v.object({
    type: v.literal('rendered'),
    id: count,
    panel: v.object({
      title: text,
      state: text,
      table: rows,
      epochRows: count,
      attentionMaps: count,
      chartPoints: count,
      figures: figureCounts,
      classes: figureCounts,
      gallery: v.object({ images: count, captions: texts }),
      provenance: texts,
      logLines: count,
    }),
  }),
  v.object({ type: v.literal('error'), message: text }),
]) satisfies v.GenericSchema<unknown, PanelToHost>;

export const matrixViewSchema = v.variant('type', [
  ready,
  v.object({ type: v.literal('open'), runId: text }),
  v.object({ type: v.literal('copy'), format: v.picklist(['markdown', 'csv', 'latex', 'json']) }),
  v.object({ type: v.literal('rendered'), rows, best: texts, legend: text }),
]) satisfies v.GenericSchema<unknown, MatrixViewMessage>;

export const previewViewSchema = v.variant('type', [
  ready,
  v.object({ type: v.literal('cancel') }),
  v.object({
    type: v.literal('rendered'),
    id: count,
    rendered: v.object({ title: text, status: text, images: count, captions: texts }),
  }),
]) satisfies v.GenericSchema<unknown, PreviewViewMessage>;

export const compareViewSchema = v.variant('type', [
  ready,
  v.object({ type: v.literal('rendered'), runs: count, differing: texts, charts: count }),
  v.object({ type: v.literal('open'), dir: text }),
]) satisfies v.GenericSchema<unknown, CompareViewMessage>;

/** An export's content: a table's CSV/JSON or a plot's PNG (base64) or SVG, far longer than a path. */
const exportContent = v.pipe(v.string(), v.maxLength(1024 * MAX_TEXT));
const sortKeys = listOf(v.object({ column: text, descending: v.boolean() }), MAX_ITEMS);
const historyState = v.object({
  sort: sortKeys,
  filter: text,
  where: text,
  selected: texts,
  layout: v.object({ order: texts, visible: v.pipe(v.record(text, v.boolean()), v.readonly()) }),
  onlyDiffering: v.boolean(),
  starredOnly: v.boolean(),
  plot: v.object({ x: v.optional(text), y: v.optional(text) }),
});

export const historyViewSchema = v.variant('type', [
  ready,
  v.object({ type: v.literal('refresh') }),
  v.object({ type: v.literal('open'), dir: text }),
  v.object({ type: v.literal('reveal'), dir: text }),
  v.object({ type: v.literal('attention'), dir: text }),
  v.object({ type: v.literal('compare'), dirs: texts }),
  v.object({ type: v.literal('matrix'), dirs: texts }),
  v.object({ type: v.literal('star'), dir: text, starred: v.boolean() }),
  v.object({ type: v.literal('layout'), layout: v.object({ order: texts, visible: v.record(text, v.boolean()) }) }),
  v.object({
    type: v.literal('export'),
    what: v.picklist(['table', 'plot']),
    format: v.picklist(['csv', 'json', 'png', 'svg']),
    content: exportContent,
    base64: v.boolean(),
  }),
  v.object({
    type: v.literal('rendered'),
    shown: texts,
    broken: count,
    state: historyState,
    columns: texts,
    points: listOf(v.object({ id: text, x: v.number(), y: v.number() }), MAX_ITEMS),
    whereError: v.optional(text),
    renderMs: v.pipe(v.number(), v.minValue(0)),
  }),
]) satisfies v.GenericSchema<unknown, HistoryViewMessage>;

export const attentionViewSchema = v.variant('type', [
  ready,
  v.object({
    type: v.literal('rendered'),
    rendered: v.object({
      state: v.object({
        image: count,
        group: count,
        input: v.picklist(['clean', 'triggered']),
        hidden: listOf(count, MAX_ITEMS),
        scale: v.picklist(['viridis', 'theme']),
        opacity: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
        sharedRange: v.boolean(),
        epoch: v.optional(v.pipe(v.number(), v.integer(), v.minValue(-1))),
      }),
      panels: listOf(
        v.object({
          model: text,
          epoch: v.pipe(v.number(), v.integer(), v.minValue(-1)),
          min: v.number(),
          max: v.number(),
          prediction: v.number(),
        }),
        MAX_ITEMS,
      ),
    }),
  }),
  v.object({ type: v.literal('problemShown'), problem: text }),
]) satisfies v.GenericSchema<unknown, AttentionViewMessage>;

// One line per page: `true` compiles only while the schema and the protocol type agree.
sameAs<typeof panelToHostSchema, PanelToHost>(true);
sameAs<typeof matrixViewSchema, MatrixViewMessage>(true);
sameAs<typeof previewViewSchema, PreviewViewMessage>(true);
sameAs<typeof historyViewSchema, HistoryViewMessage>(true);
sameAs<typeof compareViewSchema, CompareViewMessage>(true);
sameAs<typeof attentionViewSchema, AttentionViewMessage>(true);

/** The outcome of checking one message: the typed message, or why it was refused (paths and messages of the issues). */
export type Checked<T> = { readonly ok: true; readonly message: T } | { readonly ok: false; readonly reason: string };

/** Checks `raw` against `schema`; never throws, whatever `raw` is. */
export function checkMessage<T>(schema: v.GenericSchema<unknown, T>, raw: unknown): Checked<T> {
  const p = parseWith(schema, raw);
  return 'value' in p ? { ok: true, message: p.value } : { ok: false, reason: p.reason };
}
