// What the demo and Explorer UI tests read: quick-pick rows, the run panel's tables and canvases (two
// iframes deep), and the same numbers and images from the run folders on disk.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Locator, Page } from 'playwright-core';

/** The row of the open quick pick whose label contains `label`. */
export function quickPickRow(page: Page, label: string): Locator {
  return page
    .locator('.quick-input-widget .quick-input-list .monaco-list-row')
    .filter({ has: page.locator('.label-name', { hasText: label }) })
    .first();
}

/** The run panel's ACC/ASR table, header row first. */
export function panelTable(frame: FrameLocator): Promise<string[][]> {
  return frame
    .locator('#results tr')
    .evaluateAll((rows) => rows.map((r) => Array.from(r.children).map((c) => (c.textContent ?? '').trim())));
}

/** The run panel's per-epoch table without its header: phase, epoch, loss, ACC, ASR, LR, seconds. */
export function panelEpochRows(frame: FrameLocator): Promise<string[][]> {
  return frame
    .locator('#epochs tbody tr')
    .evaluateAll((rows) => rows.map((r) => Array.from(r.children).map((c) => (c.textContent ?? '').trim())));
}

/** The table's row names, in the paper's words (written out here, not taken from the panel's code). */
const MODEL_LABELS: Readonly<Record<string, string>> = {
  backdoored: 'Backdoored',
  teacher: 'Teacher',
  erased: 'After NAD',
  trained: 'Trained (backdoored)',
  finetuned: 'Finetuned',
  evaluated: 'Evaluated',
  pruned: 'Pruned',
  'fine-pruned': 'Fine-pruned',
};

/** The ACC/ASR table as the panel should show it, from the folder's results.json (two decimals). */
export function folderTable(runDir: string): string[][] {
  const { table } = JSON.parse(readFileSync(join(runDir, 'results.json'), 'utf8')) as {
    table: Array<{ model: string; acc: number; asr: number; ra?: number }>;
  };
  const ra = table.some((r) => r.ra !== undefined);
  return [
    ['Model', 'ACC %', 'ASR %', ...(ra ? ['RA %'] : [])],
    ...table.map((r) => [
      MODEL_LABELS[r.model] ?? `unknown model ${r.model}`,
      r.acc.toFixed(2),
      r.asr.toFixed(2),
      ...(ra ? [r.ra !== undefined ? r.ra.toFixed(2) : '–'] : []),
    ]),
  ];
}

interface MetricLine {
  readonly type: string;
  readonly epoch: number;
  readonly loss: number;
  readonly acc: number;
  readonly asr: number;
  readonly message?: string;
}

function metricLines(runDir: string): MetricLine[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as MetricLine);
}

/** Epoch, loss, ACC and ASR of each `epoch` line of the folder's metrics.jsonl, formatted as the panel does. */
export function folderEpochs(runDir: string): string[][] {
  return metricLines(runDir)
    .filter((m) => m.type === 'epoch')
    .map((m) => [String(m.epoch), m.loss.toFixed(4), m.acc.toFixed(2), m.asr.toFixed(2)]);
}

/** The `log` lines of the folder's metrics.jsonl. */
export function folderLog(runDir: string): string[] {
  return metricLines(runDir).flatMap((m) => (m.type === 'log' && m.message !== undefined ? [m.message] : []));
}

export interface Status {
  readonly state: string;
  readonly kind: string;
  readonly acc?: number;
  readonly asr?: number;
}

export function folderStatus(runDir: string): Status {
  return JSON.parse(readFileSync(join(runDir, 'status.json'), 'utf8')) as Status;
}

/** The newest run folder under `runsDir` whose name contains `name`, or undefined. */
export function runFolder(runsDir: string, name: string): string | undefined {
  const dir = readdirSync(runsDir)
    .filter((d) => d.includes(name))
    .sort()
    .pop();
  return dir ? join(runsDir, dir) : undefined;
}

export interface SampleFile {
  readonly image: { height: number; width: number; channels: number };
  readonly images: { clean: string[]; triggered: string[] };
  readonly snapshots: Array<{ model: string }>;
}

export function readMapsFile(runDir: string): SampleFile {
  return JSON.parse(readFileSync(join(runDir, 'attention', 'maps.json'), 'utf8')) as SampleFile;
}

/** RGBA pixels of a canvas in a webview (canvases the page drew itself can be read back). */
export function canvasPixels(canvas: Locator): Promise<{ width: number; height: number; data: number[] }> {
  return canvas.evaluate((el) => {
    const c = el as HTMLCanvasElement;
    const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data;
    return { width: c.width, height: c.height, data: Array.from(data ?? []) };
  });
}

/**
 * The grey level at the centre of each image pixel of a canvas showing an `h`x`w` image scaled up with
 * nearest-neighbour pixels (red channel).
 */
export function imageAtCentres(px: { width: number; height: number; data: number[] }, h: number, w: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const cx = Math.floor(((x + 0.5) * px.width) / w);
      const cy = Math.floor(((y + 0.5) * px.height) / h);
      out.push(px.data[(cy * px.width + cx) * 4]);
    }
  }
  return out;
}
