// Attack x defense matrices in the editor: "NAD: Run Matrix File" runs a *.nad-matrix.json in a worker
// (its cells follow one another through the run manager, each with its run panel), and "NAD: Open Matrix"
// shows a matrix folder as a page in an editor tab: the table live, a click on a cell opens its run. The
// page reads the matrix folder and its runs' status files itself, every second and a half while visible, so
// it follows runs from any process (the CLI, another window, a cluster job writing to the same disk).
import * as vscode from 'vscode';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { MatrixHostMessage, MatrixPageState, MatrixViewMessage } from '../../shared/matrix-protocol';
import { listMatrices, matricesDir, readMatrixFolder } from '../../runs/matrix/folder';
import { MATRIX_FILE_SUFFIX } from '../../runs/matrix/cells';
import { formatTable, matrixTable, type Titles } from '../../runs/matrix/table';
import { runsMatrix } from '../../runs/matrix/from-runs';
import { readRunSummary } from '../../runs/run-folder';
import type { RunSummary } from '../../runs/run-store';
import { workspaceRuns } from '../workspace-runs';
import { pickRuns, runsFromArgs } from '../runs/pick';
import { canOpenRuns, openRun } from '../history/open-run';
import type { RunManager, RunTask } from '../runs/manager';
import { folderFor, runsDirFor } from '../settings';
import { requireTrust } from '../trust';
import { webviewHtml, webviewOptions } from '../webview-html';
import { readAttacks, readDefenses } from '../wizards/registry-info';
import { newMatrixWizard } from './new-matrix';
import { slurmSummary } from '../slurm-state';
import { matrixViewSchema } from '../../shared/message-schemas';
import { onCheckedMessage } from '../webview-messages';

export const MATRIX_VIEW_TYPE = 'nad.matrix';
export { MATRIX_FILE_SUFFIX };

/** What a page shows: a matrix folder, or runs chosen in the history (their folders, in the order chosen). */
export type MatrixSource = { readonly dir: string } | { readonly runs: readonly string[] };

export const sourceKey = (s: MatrixSource): string => ('runs' in s ? `runs:${s.runs.join('|')}` : s.dir);

/** What a page last drew (tests read it); `dir` is the source's key. */
export interface MatrixRendered {
  readonly dir: string;
  readonly rows: ReadonlyArray<readonly string[]>;
  readonly best: readonly string[];
  readonly legend: string;
}

function titlesFrom(extensionPath: string): Titles {
  const attacks = new Map(readAttacks(extensionPath).map((a) => [a.name, a.title]));
  const defenses = new Map(readDefenses(extensionPath).map((d) => [d.name, d.title]));
  return { attack: (n) => attacks.get(n), defense: (n) => defenses.get(n) };
}

class MatrixPage {
  private last = '';
  /** The run folders of the cells drawn, by run id: the only runs a click may open. */
  private runDirs = new Map<string, string>();
  /** Settings are read once: the page re-reads the folder every 1.5 s. */
  private readonly runsDir: string;
  private readonly timer: NodeJS.Timeout;
  /** All the workspace's runs, to trace where a chosen defended model came from (listed once). */
  private known: RunSummary[] | undefined;
  readonly dir: string;

  constructor(
    readonly panel: vscode.WebviewPanel,
    readonly source: MatrixSource,
    private readonly pages: MatrixPages,
  ) {
    this.dir = sourceKey(source);
    this.runsDir = 'dir' in source ? pages.runsDirOf(source.dir) : '';
    panel.webview.options = webviewOptions(pages.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, pages.extensionUri, {
      script: 'matrix.js',
      styles: ['page.css', 'history.css'],
      title: 'Matrix',
    });
    onCheckedMessage(panel.webview, 'matrix page', matrixViewSchema, (m) => void this.handle(m));
    this.timer = setInterval(() => {
      if (panel.visible) void this.post();
    }, 1500);
    panel.onDidDispose(() => clearInterval(this.timer));
  }

  private read(): MatrixHostMessage & { type: 'matrix' } {
    if ('runs' in this.source) return this.readRuns(this.source.runs);
    const folder = readMatrixFolder(this.source.dir, this.runsDir);
    const table = matrixTable(folder.spec, folder.outcomes, this.pages.titles());
    const count = (s: string): number => folder.outcomes.filter((o) => o.state === s).length;
    return {
      type: 'matrix',
      id: folder.id,
      dir: this.dir,
      table,
      runsDir: folder.runsDir,
      progress: {
        finished: count('finished'),
        running: count('running'),
        failed: count('failed') + count('skipped'),
        total: folder.outcomes.length,
      },
      canOpenRun: false,
    };
  }

  /** Chosen runs as a table; a run folder deleted or damaged since is named, the others still shown. */
  private readRuns(dirs: readonly string[]): MatrixHostMessage & { type: 'matrix' } {
    const chosen: RunSummary[] = [];
    const unreadable: string[] = [];
    for (const d of dirs) {
      const r = existsSync(d) ? readRunSummary(d) : { problem: 'the run folder is gone' };
      if ('problem' in r) unreadable.push(`${basename(d)}: ${r.problem}`);
      else chosen.push(r);
    }
    // The workspace is listed once per page: a chosen run's source model was read before the run started,
    // so its training run is already there (re-listing every 1.5 s cost a full scan of .nad/runs each time).
    this.known ??= workspaceRuns().runs.map((r) => r.run);
    const m = runsMatrix(chosen, this.known, this.pages.titles());
    const count = (s: string): number => m.outcomes.filter((o) => o.state === s).length;
    return {
      type: 'matrix',
      id: `${chosen.length} runs`,
      dir: '',
      runs: dirs,
      skipped: [...unreadable, ...m.skipped.map((s) => `${s.id}: ${s.why}`)],
      table: m.table,
      runsDir: '',
      progress: { finished: count('finished'), running: count('running'), failed: count('failed'), total: m.outcomes.length },
      canOpenRun: false,
    };
  }

  private runDirsOf(m: MatrixHostMessage & { type: 'matrix' }): Map<string, string> {
    const ids = m.table.cells.flatMap((row) => row.flatMap((c) => c.runIds));
    if (!('runs' in this.source)) return new Map(ids.map((id) => [id, join(this.runsDir, id)]));
    const byId = new Map(this.source.runs.map((d) => [basename(d), d]));
    return new Map(ids.flatMap((id) => (byId.has(id) ? [[id, byId.get(id) as string] as const] : [])));
  }

  async post(force = false): Promise<void> {
    let msg: MatrixHostMessage;
    try {
      const m = this.read();
      this.runDirs = this.runDirsOf(m);
      // Only while cells run (a queued Slurm cell says running): ended matrices need no squeue.
      const slurm = m.progress.running ? await slurmSummary([...this.runDirs.values()]) : undefined;
      msg = { ...m, ...(slurm ? { slurm } : {}), canOpenRun: await canOpenRuns() };
    } catch (e) {
      msg = { type: 'problem', problem: (e as Error).message };
    }
    const text = JSON.stringify(msg);
    if (!force && text === this.last) return;
    this.last = text;
    this.panel.title =
      msg.type === 'matrix' ? `Matrix: ${msg.table.name}` : `Matrix: ${'dir' in this.source ? basename(this.source.dir) : 'runs'}`;
    await this.panel.webview.postMessage(msg);
  }

  private async handle(m: MatrixViewMessage): Promise<void> {
    try {
      switch (m.type) {
        case 'ready':
          await this.post(true);
          break;
        case 'open':
          // Only runs this page was sent: a message is not a licence to open any path.
          if (this.runDirs.has(m.runId)) await openRun(this.runDirs.get(m.runId) as string);
          break;
        case 'copy': {
          const folder = this.read();
          await vscode.env.clipboard.writeText(formatTable(folder.table, m.format));
          void vscode.window.showInformationMessage(`NAD: the matrix table is on the clipboard (${m.format}).`);
          break;
        }
        case 'rendered':
          this.pages.report({ dir: this.dir, rows: m.rows, best: m.best, legend: m.legend });
          break;
        default: {
          const _exhaustive: never = m;
          void _exhaustive;
        }
      }
    } catch (e) {
      void vscode.window.showErrorMessage(`NAD: ${(e as Error).message}`);
    }
  }
}

export class MatrixPages implements vscode.Disposable {
  private readonly pages = new Map<string, MatrixPage>();
  private readonly rendered = new vscode.EventEmitter<MatrixRendered>();
  /** Fires whenever a page has drawn its table. */
  readonly onDidRender = this.rendered.event;
  readonly lastRendered = new Map<string, MatrixRendered>();
  private cachedTitles: Titles | undefined;

  constructor(
    readonly extensionUri: vscode.Uri,
    private readonly extensionPath: string,
  ) {}

  titles(): Titles {
    this.cachedTitles ??= titlesFrom(this.extensionPath);
    return this.cachedTitles;
  }

  report(r: MatrixRendered): void {
    this.lastRendered.set(r.dir, r);
    this.rendered.fire(r);
  }

  /** The runs folder of the workspace folder a matrix folder is in (matrices sit beside the runs folder). */
  runsDirOf(dir: string): string {
    const folder = folderFor(vscode.Uri.file(dir));
    const configured = folder ? runsDirFor(folder) : undefined;
    return configured && join(dirname(configured), 'matrices') === dirname(dir) ? configured : join(dirname(dirname(dir)), 'runs');
  }

  /** Opens (or reveals) the page of a matrix folder, or of chosen runs. */
  open(source: string | MatrixSource): void {
    const s: MatrixSource = typeof source === 'string' ? { dir: source } : source;
    const existing = this.pages.get(sourceKey(s));
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const title = 'dir' in s ? `Matrix: ${basename(s.dir)}` : `Matrix: ${s.runs.length} runs`;
    const panel = vscode.window.createWebviewPanel(MATRIX_VIEW_TYPE, title, vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.attach(panel, s);
  }

  attach(panel: vscode.WebviewPanel, source: MatrixSource): void {
    const page = new MatrixPage(panel, source, this);
    const key = sourceKey(source);
    this.pages.set(key, page);
    panel.onDidDispose(() => {
      if (this.pages.get(key) === page) this.pages.delete(key);
    });
  }

  dispose(): void {
    for (const p of this.pages.values()) p.panel.dispose();
    this.rendered.dispose();
  }
}

/** Every matrix of the workspace's runs folders, newest first. */
function workspaceMatrices(): Array<{ dir: string; label: string; detail: string }> {
  return (vscode.workspace.workspaceFolders ?? []).flatMap((folder) =>
    listMatrices(runsDirFor(folder)).map((m) => {
      if ('problem' in m) return { dir: m.dir, label: m.id, detail: `unreadable: ${m.problem}` };
      const done = m.outcomes.filter((o) => o.state === 'finished').length;
      return {
        dir: m.dir,
        label: m.spec.name,
        detail: `${m.spec.attacks.length} attacks × ${m.spec.defenses.length} defenses × ${m.spec.seeds.length} seeds; ${done} of ${m.outcomes.length} runs finished · ${m.id}`,
      };
    }),
  );
}

async function pickMatrixFile(): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles(`**/*${MATRIX_FILE_SUFFIX}`, '**/{node_modules,.git}/**', 200);
  if (files.length === 0) {
    void vscode.window.showInformationMessage(
      `NAD: no *${MATRIX_FILE_SUFFIX} file in the workspace. docs/matrix.md describes the file; \`nad matrix --help\` too.`,
    );
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    files.map((uri) => ({ label: basename(uri.fsPath), description: vscode.workspace.asRelativePath(uri), uri })),
    { placeHolder: 'Matrix file to run' },
  );
  return pick?.uri;
}

/** Waits (up to `ms`) for a matrix folder written after `since` to appear beside `runsDir`. */
async function newMatrixDir(runsDir: string, since: number, ms: number): Promise<string | undefined> {
  // Only the matrix.json times: reading each matrix's cells every 300 ms would read every run's status.
  const root = matricesDir({ cwd: '', runsDir });
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const names = existsSync(root) ? readdirSync(root) : [];
    const found = names
      .map((name) => join(root, name))
      .find((dir) => existsSync(join(dir, 'matrix.json')) && statSync(join(dir, 'matrix.json')).mtimeMs >= since - 1000);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 300));
  }
  return undefined;
}

export function registerMatrices(context: vscode.ExtensionContext, manager: RunManager): MatrixPages {
  const pages = new MatrixPages(context.extensionUri, context.extensionPath);
  const openMatrix = async (arg?: unknown): Promise<void> => {
    let dir = typeof arg === 'string' ? arg : arg instanceof vscode.Uri ? arg.fsPath : undefined;
    if (dir && basename(dir) === 'matrix.json') dir = join(dir, '..');
    if (!dir) {
      const items = workspaceMatrices();
      if (items.length === 0) {
        void vscode.window.showInformationMessage(
          'NAD: no matrix yet. "NAD: Run Matrix File" runs a *.nad-matrix.json; `nad matrix` does too.',
        );
        return;
      }
      dir = (await vscode.window.showQuickPick(items, { placeHolder: 'Matrix to open', matchOnDetail: true }))?.dir;
    }
    if (dir) pages.open(dir);
  };
  const runMatrixFile = async (arg?: unknown): Promise<RunTask | undefined> => {
    if (!requireTrust('Running a matrix')) return undefined;
    const uri = arg instanceof vscode.Uri ? arg : await pickMatrixFile();
    if (!uri) return undefined;
    const folder = folderFor(uri);
    if (!folder) {
      void vscode.window.showErrorMessage('NAD: open a folder first; a matrix stores its runs in it (.nad/runs).');
      return undefined;
    }
    const runsDir = runsDirFor(folder);
    const since = Date.now();
    const task = manager.start({
      title: `Matrix ${basename(uri.fsPath)}`,
      job: { kind: 'matrix', file: uri.fsPath },
      cwd: folder.uri.fsPath,
      runsDir,
      // The matrix page is the live view; a click on a cell opens that run's panel.
      openPanel: false,
    });
    // The page opens once the worker has checked the file and written the matrix folder.
    void Promise.race([newMatrixDir(runsDir, since, 120_000), task.ended.then(() => newMatrixDir(runsDir, since, 1))]).then((dir) => {
      if (dir) pages.open(dir);
    });
    return task;
  };
  context.subscriptions.push(
    pages,
    vscode.window.registerWebviewPanelSerializer(MATRIX_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
        const s = state as MatrixPageState | undefined;
        const runs = Array.isArray(s?.runs) ? s.runs.filter((d): d is string => typeof d === 'string') : [];
        if (runs.length) pages.attach(panel, { runs });
        else if (typeof s?.dir === 'string' && existsSync(s.dir)) pages.attach(panel, { dir: s.dir });
        else panel.dispose();
      },
    }),
    vscode.commands.registerCommand('nad.openMatrix', openMatrix),
    vscode.commands.registerCommand('nad.showRunsAsMatrix', async (clicked: unknown, selected: unknown) => {
      const dirs =
        Array.isArray(clicked) && clicked.every((d) => typeof d === 'string')
          ? (clicked as string[])
          : clicked === undefined
            ? (
                await pickRuns({
                  title: 'Which runs, side by side as attack × defense?',
                  many: true,
                  minimum: 1,
                  emptyMessage: 'There are no runs yet.',
                })
              ).map((r) => r.run.dir)
            : runsFromArgs(clicked, selected).flatMap((r) => ('run' in r ? [r.run.dir] : []));
      if (dirs.length) pages.open({ runs: dirs });
    }),
    vscode.commands.registerCommand('nad.runMatrixFile', runMatrixFile),
    vscode.commands.registerCommand('nad.newMatrix', (arg?: unknown) =>
      requireTrust('Creating a matrix') ? newMatrixWizard(context.extensionPath, arg instanceof vscode.Uri ? arg : undefined) : undefined,
    ),
  );
  return pages;
}
