// "NAD: Compare Runs": a page overlaying the runs' ACC, ASR and loss per epoch (metrics.jsonl) and listing
// their configs' differences (config.json, flattened to key = value).
import * as vscode from 'vscode';
import { existsSync } from 'node:fs';
import type { RunSummary } from '../../runs/run-store';
import { readRunSummary, replayRun } from '../../runs/run-folder';
import { phaseLabel } from '../../shared/run-state';
import type {
  CompareData,
  CompareHostMessage,
  CompareRun,
  CompareViewState,
  ConfigDiffRow,
  CurveSegment,
} from '../../shared/history-protocol';
import { runLabel } from './runs-tree';
import { openRun } from './open-run';
import { pickRuns, runsFromArgs, workspaceRuns } from '../runs/pick';
import { colourSlots } from '../../shared/history-columns';
import { webviewHtml, webviewOptions } from '../webview-html';
import { compareViewSchema } from '../../shared/message-schemas';
import { onCheckedMessage } from '../webview-messages';

export const COMPARE_VIEW_TYPE = 'nad.compare';

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends ReadonlyArray<infer U> ? U[] : T[K] };

/** A run's epoch curves, one segment per phase (an erase run that finetuned its teacher first has two), from the one replay of its events. */
export function readCurves(run: RunSummary): { segments: CurveSegment[]; problems: readonly string[] } {
  const { epochs, problems } = replayRun(run);
  const segments: Array<Mutable<CurveSegment>> = [];
  let last: string | undefined;
  for (const e of epochs) {
    if (e.phase !== last || segments.length === 0) segments.push({ phase: phaseLabel(e.phase), epochs: [], acc: [], asr: [], loss: [] });
    last = e.phase;
    const seg = segments[segments.length - 1];
    seg.epochs.push(e.epoch);
    seg.acc.push(e.acc);
    seg.asr.push(e.asr);
    seg.loss.push(e.loss);
  }
  return { segments, problems };
}

/** config.json as dotted keys; lists of plain values stay one value (`lrSchedule = [[0,0.1],[2,0.01]]`). */
export function flattenConfig(value: unknown, prefix = '', out = new Map<string, string>()): Map<string, string> {
  const plain = (v: unknown): boolean => v === null || typeof v !== 'object' || (Array.isArray(v) && v.every(plain));
  if (plain(value)) {
    out.set(prefix || '(value)', typeof value === 'string' ? value : JSON.stringify(value));
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => flattenConfig(v, `${prefix}[${i}]`, out));
  } else {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) out.set(prefix || '(value)', '{}');
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  }
  return out;
}

/** Union of the runs' flattened keys (first-seen order), each with every run's value. */
export function configDiff(configs: ReadonlyArray<Record<string, unknown>>): ConfigDiffRow[] {
  const flat = configs.map((c) => flattenConfig(c));
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const f of flat) {
    for (const k of f.keys()) {
      if (!seen.has(k)) keys.push(k);
      seen.add(k);
    }
  }
  return keys.map((key) => {
    const values = flat.map((f) => f.get(key));
    return { key, values, differs: values.some((v) => v !== values[0]) };
  });
}

export function compareData(dirs: readonly string[]): CompareData {
  const runs: CompareRun[] = [];
  const configs: Array<Record<string, unknown>> = [];
  const missing: Array<{ dir: string; problem: string }> = [];
  // Each run keeps the colour it has on the history page (slots by order of creation in the workspace).
  const slots = colourSlots(workspaceRuns().runs.map((r) => r.run.id));
  for (const dir of dirs) {
    const read = existsSync(dir) ? readRunSummary(dir) : { id: dir, dir, problem: 'the run folder no longer exists' };
    if ('problem' in read) {
      missing.push({ dir, problem: read.problem });
      continue;
    }
    const { segments, problems } = readCurves(read);
    runs.push({
      dir,
      name: runLabel(read),
      kind: read.status.kind,
      state: read.status.state,
      acc: read.status.acc,
      asr: read.status.asr,
      colour: slots.get(read.id) ?? runs.length,
      segments,
      problems,
    });
    configs.push(read.config);
  }
  return { runs, config: configDiff(configs), missing };
}

export interface CompareRendered {
  readonly runs: number;
  readonly differing: readonly string[];
  readonly charts: number;
}

export class ComparePanels implements vscode.Disposable {
  private readonly panels = new Set<vscode.WebviewPanel>();
  private readonly rendered = new vscode.EventEmitter<CompareRendered>();
  readonly onDidRender = this.rendered.event;
  lastRendered: CompareRendered | undefined;

  constructor(private readonly extensionUri: vscode.Uri) {}

  open(dirs: readonly string[]): void {
    const panel = vscode.window.createWebviewPanel(
      COMPARE_VIEW_TYPE,
      'NAD: Compare Runs',
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.attach(panel, { dirs, onlyDifferences: false });
  }

  /** Set up a panel for `state`: a new one, or one VS Code restores after a reload. */
  attach(panel: vscode.WebviewPanel, state: CompareViewState): void {
    this.panels.add(panel);
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, {
      script: 'compare.js',
      styles: ['page.css', 'history.css'],
      title: 'Compare runs',
    });
    const data = (): CompareData => compareData(state.dirs);
    panel.title = `NAD: Compare ${state.dirs.length} Runs`;
    const sub = onCheckedMessage(panel.webview, 'compare page', compareViewSchema, async (m) => {
      switch (m.type) {
        case 'ready': {
          const msg: CompareHostMessage = { type: 'data', data: data() };
          await panel.webview.postMessage(msg);
          break;
        }
        case 'rendered':
          this.lastRendered = { runs: m.runs, differing: m.differing, charts: m.charts };
          this.rendered.fire(this.lastRendered);
          break;
        case 'open':
          if (state.dirs.includes(m.dir)) await openRun(m.dir);
          break;
        default: {
          const _exhaustive: never = m;
          void _exhaustive;
        }
      }
    });
    panel.onDidDispose(() => {
      sub.dispose();
      this.panels.delete(panel);
    });
  }

  dispose(): void {
    for (const p of [...this.panels]) p.dispose();
    this.rendered.dispose();
  }
}

function isCompareState(v: unknown): v is CompareViewState {
  return (
    typeof v === 'object' &&
    v !== null &&
    Array.isArray((v as CompareViewState).dirs) &&
    (v as CompareViewState).dirs.every((d) => typeof d === 'string')
  );
}

/** "NAD: Compare Runs" from the palette (asks) or the Runs tree (the selected rows). */
export function registerCompare(context: vscode.ExtensionContext): ComparePanels {
  const panels = new ComparePanels(context.extensionUri);
  context.subscriptions.push(
    panels,
    vscode.window.registerWebviewPanelSerializer(COMPARE_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
        if (isCompareState(state)) panels.attach(panel, state);
        else panel.dispose();
      },
    }),
    vscode.commands.registerCommand('nad.compareRuns', async (clicked: unknown, selected: unknown) => {
      let dirs: string[];
      if (clicked === undefined) {
        dirs = (
          await pickRuns({
            title: 'Compare which runs? (pick two or more)',
            many: true,
            minimum: 2,
            emptyMessage: 'There are no runs to compare yet.',
          })
        ).map((r) => r.run.dir);
      } else if (Array.isArray(clicked) && clicked.every((d) => typeof d === 'string')) {
        dirs = clicked as string[];
      } else {
        const refs = runsFromArgs(clicked, selected);
        const broken = refs.filter((r) => 'broken' in r);
        if (broken.length > 0)
          throw new Error(
            `Cannot compare unreadable run folders: ${broken.map((b) => ('broken' in b ? `${b.broken.id} (${b.broken.problem})` : '')).join(', ')}`,
          );
        dirs = refs.map((r) => ('run' in r ? r.run.dir : ''));
      }
      if (dirs.length === 0) return;
      if (dirs.length < 2) {
        void vscode.window.showInformationMessage('Select two or more runs to compare (Ctrl/Cmd+click in the Runs view).');
        return;
      }
      panels.open(dirs);
    }),
  );
  return panels;
}
