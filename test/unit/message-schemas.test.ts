// The run-time checks of webview messages (src/shared/message-schemas.ts): every message a page sends
// passes unchanged; malformed ones (fuzzed with fast-check, seeded, and mutated from valid ones) are
// refused with a reason naming the field, and checking never throws, whatever arrives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { GenericSchema } from 'valibot';
import {
  MAX_ITEMS,
  MAX_TEXT,
  checkMessage,
  attentionViewSchema,
  compareViewSchema,
  historyViewSchema,
  matrixViewSchema,
  messagePreview,
  panelToHostSchema,
  previewViewSchema,
} from '../../src/shared/message-schemas';

const counts = { charts: 2, chartBars: 10, matrices: 2, images: 4, facts: 3 };
const SAMPLES: Record<string, { schema: GenericSchema; valid: unknown[] }> = {
  panel: {
    schema: panelToHostSchema,
    valid: [
      { type: 'ready' },
      { type: 'copy', format: 'csv', text: 'model,acc\nnad,84.57' },
      ...['cancel', 'resume', 'rerun', 'rerunWithChanges', 'revealFolder', 'showLog'].map((action) => ({ type: 'action', action })),
      {
        type: 'rendered',
        id: 3,
        panel: {
          title: 'NAD run',
          state: 'finished',
          table: [
            ['model', 'ACC'],
            ['nad', '84.57'],
          ],
          epochRows: 20,
          attentionMaps: 12,
          chartPoints: 40,
          figures: counts,
          classes: counts,
          gallery: { images: 24, captions: ['clean', 'poisoned'] },
          provenance: ['backend: wasm'],
          logLines: 5,
        },
      },
      { type: 'error', message: 'chart failed' },
    ],
  },
  matrix: {
    schema: matrixViewSchema,
    valid: [
      { type: 'ready' },
      { type: 'open', runId: '20261130-094245-demo-4349' },
      ...['markdown', 'csv', 'latex', 'json'].map((format) => ({ type: 'copy', format })),
      { type: 'rendered', rows: [['BadNets', '90.1 / 2.0']], best: ['badnets/nad'], legend: 'Shading: ASR' },
    ],
  },
  preview: {
    schema: previewViewSchema,
    valid: [
      { type: 'ready' },
      { type: 'cancel' },
      { type: 'rendered', id: 1, rendered: { title: 'WaNet', status: 'done', images: 8, captions: ['a'] } },
    ],
  },
  attention: {
    schema: attentionViewSchema,
    valid: [
      { type: 'ready' },
      { type: 'problemShown', problem: 'maps.json line 3: cut off' },
      {
        type: 'rendered',
        rendered: {
          state: { image: 0, group: 2, input: 'triggered', hidden: [1], scale: 'theme', opacity: 0.6, sharedRange: true, epoch: 3 },
          panels: [{ model: 'erased', epoch: 3, min: 0, max: 0.4, prediction: 5 }],
        },
      },
    ],
  },
  history: {
    schema: historyViewSchema,
    valid: [
      { type: 'ready' },
      { type: 'refresh' },
      ...['open', 'reveal', 'attention'].map((type) => ({ type, dir: '/w/.nad/runs/a' })),
      { type: 'compare', dirs: ['/w/.nad/runs/a', '/w/.nad/runs/b'] },
      { type: 'star', dir: '/w/.nad/runs/a', starred: true },
      { type: 'layout', layout: { order: ['name', 'params.training.betas.2'], visible: { 'params.seed': false } } },
      { type: 'export', what: 'plot', format: 'svg', content: '<svg/>', base64: false },
      {
        type: 'rendered',
        shown: ['/w/.nad/runs/a'],
        broken: 0,
        state: {
          sort: [{ column: 'asr', descending: false }],
          filter: 'erase',
          where: 'asr < 10',
          selected: [],
          layout: { order: [], visible: {} },
          onlyDiffering: true,
          starredOnly: false,
          plot: { x: 'params.training.betas.2', y: 'asr' },
        },
        columns: ['name', 'asr'],
        points: [{ id: 'a', x: 500, y: 3.1 }],
        whereError: 'expected a value',
        renderMs: 12,
      },
    ],
  },
  compare: {
    schema: compareViewSchema,
    valid: [
      { type: 'ready' },
      { type: 'rendered', runs: 2, differing: ['training.betas'], charts: 3 },
      { type: 'open', dir: '/w/.nad/runs/x' },
    ],
  },
};

/** Fields the protocols mark optional (`?`) and record entries, which a message may leave out (path suffixes). */
const OPTIONAL = [/state\.epoch$/, /whereError$/, /plot\.[xy]$/, /visible\./];

/** Every path to a leaf or a field of `v`, as key lists. */
function paths(v: unknown, at: Array<string | number> = []): Array<Array<string | number>> {
  if (typeof v !== 'object' || v === null) return [at];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [...(at.length ? [at] : []), ...entries.flatMap(([k, x]) => paths(x, [...at, k]))];
}

function withValue(v: unknown, path: ReadonlyArray<string | number>, value: unknown, remove = false): unknown {
  const copy = structuredClone(v) as Record<string | number, unknown>;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (remove) delete o[last];
  else o[last] = value;
  return copy;
}

for (const [page, { schema, valid }] of Object.entries(SAMPLES)) {
  test(`${page}: every message the page sends passes unchanged`, () => {
    for (const m of valid) {
      const r = checkMessage(schema, m);
      assert.ok(r.ok, `${JSON.stringify(m)} refused: ${r.ok ? '' : r.reason}`);
      assert.deepEqual(r.message, m);
    }
  });

  test(`${page}: a valid message with one field removed or of the wrong type is refused, naming the field`, () => {
    let refused = 0;
    for (const m of valid) {
      for (const p of paths(m)) {
        if (p.length === 1 && p[0] === 'type') continue;
        for (const [bad, remove] of [
          [undefined, true],
          [{ nested: { deep: 1 } }, false],
          [Symbol('x'), false],
        ] as const) {
          const r = checkMessage(schema, withValue(m, p, bad, remove));
          // Removing an array element leaves a shorter, still valid array; optional fields may go.
          if (remove && (typeof p[p.length - 1] === 'number' || OPTIONAL.some((o) => o.test(p.join('.'))))) continue;
          // An object whose fields are all optional (the plot's axes) takes any object.
          if (typeof bad === 'object' && /plot$/.test(p.join('.'))) continue;
          assert.ok(!r.ok, `${page}: ${JSON.stringify(p)} ${remove ? 'removed' : 'replaced'} was accepted`);
          const field = p.filter((k) => typeof k === 'string').pop() as string;
          assert.ok(r.reason.includes(field), `reason "${r.reason}" does not name ${field}`);
          refused++;
        }
      }
    }
    assert.ok(refused > 0);
  });

  test(`${page}: 500 arbitrary values (fast-check, seed 1) are refused or are a known message, and checking never throws`, () => {
    const types = new Set(valid.map((m) => (m as { type: string }).type));
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record(
            { type: fc.constantFrom(...types), id: fc.anything(), dir: fc.anything(), action: fc.anything() },
            { requiredKeys: ['type'] },
          ),
        ),
        (raw) => {
          const r = checkMessage(schema, raw);
          if (r.ok) {
            accepted++;
            assert.ok(types.has((r.message as { type: string }).type));
          } else assert.ok(typeof r.reason === 'string' && r.reason.length > 0);
        },
      ),
      { numRuns: 500, seed: 1 },
    );
    // `ready`, `cancel` and the like carry nothing else, so some random records are valid.
    assert.ok(accepted < 500);
  });
}

test('bounds: over-long strings and lists are refused; unknown keys are dropped, __proto__ included', () => {
  const long = checkMessage(compareViewSchema, { type: 'open', dir: 'x'.repeat(MAX_TEXT + 1) });
  assert.ok(!long.ok && /dir/.test(long.reason));
  const many = checkMessage(matrixViewSchema, { type: 'rendered', rows: [], best: Array(MAX_ITEMS + 1).fill('a'), legend: '' });
  assert.ok(!many.ok && /best/.test(many.reason));
  const negative = checkMessage(panelToHostSchema, { type: 'rendered', id: -1, panel: {} });
  assert.ok(!negative.ok);
  const polluted = checkMessage(compareViewSchema, JSON.parse('{"type":"open","dir":"d","__proto__":{"polluted":1},"extra":2}'));
  assert.ok(polluted.ok);
  assert.deepEqual(Object.keys(polluted.message), ['type', 'dir']);
  assert.equal(({} as { polluted?: number }).polluted, undefined);
});

test('messagePreview: short, and safe on cycles, BigInt and huge values', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(messagePreview(cyclic), '[object Object]');
  assert.equal(messagePreview(10n), '[object BigInt]');
  assert.equal(messagePreview(undefined), 'undefined');
  assert.equal(messagePreview({ type: 'x'.repeat(1000) }).length, 201);
});
