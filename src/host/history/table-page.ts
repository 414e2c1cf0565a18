// The experiment history page: every run of the workspace as a table whose columns come from the runs'
// parameters and metrics (a webview panel restored after reload): multi-column sort, text and value
// filters, stars (star.json in the run folder), a metric-against-parameter plot, exports to CSV, JSON,
// PNG and SVG, and open, reveal, attention maps and compare for its rows.
import * as vscode from 'vscode';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type {
  BrokenRow,
  ColumnLayout,
  ExportFormat,
  HistoryHostMessage,
  HistoryRow,
  HistoryViewMessage,
} from '../../shared/history-protocol';
import { cleanShareOf, colourSlots, flattenParams, resultMetrics } from '../../shared/history-columns';
import { provenanceCells } from '../../shared/history-provenance';
import { historyViewSchema } from '../../shared/message-schemas';
import { isStarred, setStarred } from '../../runs/run-star';
import { onCheckedMessage } from '../webview-messages';
import { canOpenRuns, openRun, revealRun } from './open-run';
import { runKindLabel, runLabel, type RunsTreeProvider } from './runs-tree';
import { workspaceRuns, type RunRef } from '../runs/pick';
import { webviewHtml, webviewOptions } from '../webview-html';

export const HISTORY_VIEW_TYPE = 'nad.history';

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() ? v : typeof v === 'number' ? String(v) : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Data set as a person names it: `mnist`, or the file/folder name. */
function datasetOf(config: Record<string, unknown>): string | undefined {
  const images = config['images'];
  if (Array.isArray(images)) return images.length === 1 ? basename(String(images[0])) : `${images.length} images`;
  const d = text(config['data']) ?? text(config['test']) ?? text(config['dataset']);
  return d && /[\\/]/.test(d) ? basename(d) : d;
}

/** results.json's numbers; a missing or unreadable file has none (the status.json headline stays). */
function readResultMetrics(runDir: string): Record<string, number> {
  const file = join(runDir, 'results.json');
  if (!existsSync(file)) return {};
  try {
    return resultMetrics(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return {};
  }
}

/** One table row from a run folder; hand-edited configs may lack or mistype any field, so each is optional. */
export function historyRow(ref: RunRef, now = Date.now(), colour = 0): HistoryRow {
  const { run, folder } = ref;
  const c = run.config;
  const s = run.status;
  const backdoor = record(c['backdoor']);
  const trigger = text(record(backdoor?.['trigger'])?.['name']) ?? text(c['trigger']);
  const targetLabel = num(backdoor?.['targetLabel']) ?? num(c['target']);
  const targetType = text(backdoor?.['targetType']);
  const epochs = num(record(c['training'])?.['epochs']) ?? num(c['epochs']);
  const started = Date.parse(s.startedAt);
  const ended = s.endedAt ? Date.parse(s.endedAt) : s.state === 'running' ? now : undefined;
  const backendDetail = text(s.backend);
  const provenance = provenanceCells(c['provenance']);
  const clean = cleanShareOf(c, s);
  return {
    dir: run.dir,
    id: run.id,
    name: runLabel(run),
    workspace: (vscode.workspace.workspaceFolders?.length ?? 0) > 1 ? folder?.name : undefined,
    kind: runKindLabel(run),
    state: s.state,
    dataset: datasetOf(c),
    trigger,
    // all2all has no single target (label + 1); the others attack one class.
    target:
      targetType === 'all2all'
        ? 'all2all'
        : targetLabel === undefined
          ? undefined
          : targetType === 'cleanLabel'
            ? `${targetLabel} (clean-label)`
            : String(targetLabel),
    targetType,
    epochs,
    epochsDone: s.lastEpoch !== undefined && s.lastEpoch !== epochs ? s.lastEpoch : undefined,
    acc: num(s.acc),
    asr: num(s.asr),
    ra: num(s.ra),
    der: num(s.der),
    backend: text(c['backendUsed']) ?? backendDetail?.split(' ')[0],
    backendDetail,
    startedAt: s.startedAt,
    durationMs: ended !== undefined && Number.isFinite(started) && Number.isFinite(ended) ? Math.max(0, ended - started) : undefined,
    error: s.error,
    hasAttention: existsSync(join(run.dir, 'attention', 'maps.json')),
    params: flattenParams(c),
    metrics: readResultMetrics(run.dir),
    provenance: provenance.values,
    provenanceNotes: provenance.notes,
    cleanShare: clean.share,
    cleanShareNote: clean.note,
    starred: isStarred(run.dir),
    colour,
  };
}

export function historyRows(): { rows: HistoryRow[]; broken: BrokenRow[] } {
  const { runs, broken } = workspaceRuns();
  const slots = colourSlots(runs.map((r) => r.run.id));
  const now = Date.now();
  return {
    rows: runs.map((r) => historyRow(r, now, slots.get(r.run.id) ?? 0)),
    broken: broken.map((b) => ({ dir: b.broken.dir, id: b.broken.id, problem: b.broken.problem })),
  };
}

/** What the page last reported (tests read it): its `rendered` message without the type. */
export type HistoryRendered = Omit<Extract<HistoryViewMessage, { type: 'rendered' }>, 'type'>;

const LAYOUT_KEY = 'nad.history.layout';

const EXPORT_FILTERS: Readonly<Record<ExportFormat, Record<string, string[]>>> = {
  csv: { 'CSV (comma-separated values)': ['csv'] },
  json: { JSON: ['json'] },
  png: { 'PNG image': ['png'] },
  svg: { 'SVG image': ['svg'] },
};

export class HistoryPage implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private readonly rendered = new vscode.EventEmitter<HistoryRendered>();
  /** Fires whenever the page has drawn its table. */
  readonly onDidRender = this.rendered.event;
  lastRendered: HistoryRendered | undefined;
  private shownDirs = new Set<string>();
  private readonly subs: vscode.Disposable[] = [this.rendered];
  /**
   * Where the next export goes instead of asking with a save dialog (tests set it through the extension's
   * API); used once.
   */
  nextExportPath: string | undefined;
  /** Fires after an export was written, with its path. */
  private readonly exported = new vscode.EventEmitter<string>();
  readonly onDidExport = this.exported.event;

  constructor(
    private readonly extensionUri: vscode.Uri,
    runs: RunsTreeProvider,
    private readonly compare: (dirs: readonly string[]) => Promise<void>,
    private readonly memento?: vscode.Memento,
  ) {
    this.subs.push(this.exported);
    // The tree already watches the run folders: follow its refreshes.
    this.subs.push(runs.onDidChangeTreeData(() => void this.post()));
  }

  get isOpen(): boolean {
    return this.panel !== undefined;
  }

  show(): void {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      HISTORY_VIEW_TYPE,
      'NAD: Experiment History',
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.attach(panel);
  }

  /** Take over a panel: a new one, or one VS Code restores after a reload. */
  attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    panel.webview.options = webviewOptions(this.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, {
      script: 'history.js',
      styles: ['page.css', 'history.css'],
      title: 'Experiment history',
    });
    const sub = onCheckedMessage(panel.webview, 'history page', historyViewSchema, (m) => void this.handle(m));
    panel.onDidDispose(() => {
      sub.dispose();
      if (this.panel === panel) this.panel = undefined;
    });
  }

  private async handle(m: HistoryViewMessage): Promise<void> {
    // Act only on run folders this page was sent: a message is not a licence to touch any path.
    const known = (dir: string): boolean => this.shownDirs.has(dir);
    if ((m.type === 'open' || m.type === 'reveal' || m.type === 'attention' || m.type === 'star') && !known(m.dir)) return;
    if ((m.type === 'compare' || m.type === 'matrix') && !m.dirs.every(known)) return;
    try {
      switch (m.type) {
        case 'ready':
        case 'refresh':
          await this.post();
          break;
        case 'open':
          await openRun(m.dir);
          break;
        case 'reveal':
          await revealRun(m.dir);
          break;
        case 'attention':
          await vscode.commands.executeCommand('nad.showAttentionMaps', m.dir);
          break;
        case 'compare':
          await this.compare(m.dirs);
          break;
        case 'matrix':
          await vscode.commands.executeCommand('nad.showRunsAsMatrix', m.dirs);
          break;
        case 'star':
          setStarred(m.dir, m.starred);
          await this.post();
          break;
        case 'layout':
          await this.memento?.update(LAYOUT_KEY, m.layout);
          break;
        case 'export':
          await this.export(m.what, m.format, m.content, m.base64);
          break;
        case 'rendered': {
          const { type: _type, ...report } = m;
          this.lastRendered = report;
          this.rendered.fire(this.lastRendered);
          break;
        }
        default: {
          const _exhaustive: never = m;
          void _exhaustive;
        }
      }
    } catch (e) {
      void vscode.window.showErrorMessage((e as Error).message);
    }
  }

  /** Writes what the page made to the file the user picks (or the test's path). */
  private async export(what: 'table' | 'plot', format: ExportFormat, content: string, base64: boolean): Promise<void> {
    let path = this.nextExportPath;
    this.nextExportPath = undefined;
    if (!path) {
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const name = `nad-${what === 'table' ? 'runs' : 'plot'}.${format}`;
      const uri = await vscode.window.showSaveDialog({
        title: `Export the ${what === 'table' ? 'shown runs' : 'plot'} as ${format.toUpperCase()}`,
        defaultUri: folder ? vscode.Uri.joinPath(folder, name) : undefined,
        filters: EXPORT_FILTERS[format],
        saveLabel: 'Export',
      });
      if (!uri) return;
      if (uri.scheme !== 'file') throw new Error(`NAD: can only export to a local file, not ${uri.toString()}`);
      path = uri.fsPath;
    }
    try {
      writeFileSync(path, base64 ? Buffer.from(content, 'base64') : content);
    } catch (e) {
      await this.postMessage({ type: 'exported', problem: `could not write ${path}: ${(e as Error).message}` });
      throw e;
    }
    await this.postMessage({ type: 'exported', path });
    this.exported.fire(path);
  }

  private async postMessage(msg: HistoryHostMessage): Promise<void> {
    await this.panel?.webview.postMessage(msg);
  }

  private async post(): Promise<void> {
    if (!this.panel) return;
    const canOpenRun = await canOpenRuns();
    const layout = this.memento?.get<ColumnLayout>(LAYOUT_KEY);
    const msg: HistoryHostMessage & { type: 'runs' } = { type: 'runs', ...historyRows(), canOpenRun, ...(layout ? { layout } : {}) };
    this.shownDirs = new Set([...msg.rows.map((r) => r.dir), ...msg.broken.map((b) => b.dir)]);
    await this.panel.webview.postMessage(msg);
  }

  dispose(): void {
    this.panel?.dispose();
    this.subs.forEach((s) => s.dispose());
  }
}

/** Registers the page, its serializer and "NAD: Show Experiment History Table". */
export function registerHistoryPage(
  context: vscode.ExtensionContext,
  runs: RunsTreeProvider,
  compare: (dirs: readonly string[]) => Promise<void>,
): HistoryPage {
  const page = new HistoryPage(context.extensionUri, runs, compare, context.workspaceState);
  context.subscriptions.push(
    page,
    vscode.window.registerWebviewPanelSerializer(HISTORY_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel) => page.attach(panel),
    }),
    vscode.commands.registerCommand('nad.showHistoryPage', () => page.show()),
  );
  return page;
}
