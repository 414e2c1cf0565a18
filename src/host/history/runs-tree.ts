// The "Runs" tree view: one row per run folder under <workspace folder>/.nad/runs, read by RunStore.
// The folders are the history (no second index), so the view just re-reads them when they change.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { BrokenRun, RunState, RunSummary } from '../../runs/run-store';
import { runsPatternFor } from '../settings';
import { describeSlurmJob, runningSlurmJobs } from '../slurm-state';
import type { SlurmJobState } from '../../runs/executors/slurm';
import { workspaceRuns } from '../workspace-runs';

export const RUNS_VIEW_ID = 'nad.runs';

export type RunsNode =
  | { readonly type: 'run'; readonly folder: vscode.WorkspaceFolder; readonly run: RunSummary }
  | { readonly type: 'broken'; readonly folder: vscode.WorkspaceFolder; readonly broken: BrokenRun };

/** What `activate` returns: lets integration tests (and later, other extensions) read the view's model. */
export interface NadExtensionApi {
  readonly runs: RunsTreeProvider;
  readonly runsView: vscode.TreeView<RunsNode>;
}

const STATE_ICONS: Record<RunState, vscode.ThemeIcon> = {
  running: new vscode.ThemeIcon('sync~spin', new vscode.ThemeColor('charts.blue')),
  finished: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
  failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
  cancelled: new vscode.ThemeIcon('circle-slash'),
  interrupted: new vscode.ThemeIcon('debug-disconnect', new vscode.ThemeColor('list.warningForeground')),
};

function percent(value: number | undefined): string | undefined {
  return value === undefined ? undefined : `${value.toFixed(1)}%`;
}

/** Label of a run: its config's name when it has one, else the folder name. */
export function runLabel(run: RunSummary): string {
  const name = run.config['name'];
  return typeof name === 'string' && name.trim() ? name : run.id;
}

/** What a run did: its kind, with the defense or attack it ran ("fine-pruning", "train (blend)"). */
export function runKindLabel(run: RunSummary): string {
  const { kind } = run.status;
  const method = run.config['method'];
  if (kind === 'defend' && typeof method === 'string') return run.config['mode'] === 'detect' ? `detect (${method})` : method;
  const attack = run.config['attack'] as { name?: unknown } | undefined;
  return kind === 'train' && typeof attack?.name === 'string' ? `train (${attack.name})` : kind;
}

/** "erase · finished · ACC 91.2% · ASR 2.4%": what a person scans the list for. */
export function runDescription(run: RunSummary): string {
  const { state, acc, asr } = run.status;
  const parts: string[] = [runKindLabel(run), state];
  if (acc !== undefined) parts.push(`ACC ${percent(acc)}`);
  if (asr !== undefined) parts.push(`ASR ${percent(asr)}`);
  return parts.join(' · ');
}

function runTooltip(run: RunSummary): vscode.MarkdownString {
  const s = run.status;
  const lines = [
    `**${runLabel(run)}** (${s.kind}, ${s.state})`,
    '',
    `Folder: \`${run.id}\``,
    `Started: ${s.startedAt}${s.endedAt ? `, ended: ${s.endedAt}` : ''}`,
  ];
  if (s.acc !== undefined || s.asr !== undefined) lines.push(`ACC ${percent(s.acc) ?? '–'}, ASR ${percent(s.asr) ?? '–'}`);
  if (s.error) lines.push('', `Error: ${s.error}`);
  const tooltip = new vscode.MarkdownString(lines.join('  \n'));
  tooltip.supportHtml = false;
  return tooltip;
}

export class RunsTreeProvider implements vscode.TreeDataProvider<RunsNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunsNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly disposables: vscode.Disposable[] = [this.changed];
  private pending: NodeJS.Timeout | undefined;
  /** Slurm jobs of the runs that went there and still run; their states change without a file changing. */
  private slurm = new Map<string, SlurmJobState>();
  private slurmAsking = false;
  private slurmTimer: NodeJS.Timeout | undefined;

  constructor() {
    // Runs are written by the CLI and by worker processes: watch the folders, whoever writes them.
    const watchFolder = (folder: vscode.WorkspaceFolder): vscode.FileSystemWatcher => {
      const watcher = vscode.workspace.createFileSystemWatcher(runsPatternFor(folder));
      const schedule = (): void => this.scheduleRefresh();
      watcher.onDidCreate(schedule);
      watcher.onDidChange(schedule);
      watcher.onDidDelete(schedule);
      return watcher;
    };
    let watchers = (vscode.workspace.workspaceFolders ?? []).map(watchFolder);
    const rewatch = (): void => {
      watchers.forEach((w) => w.dispose());
      watchers = (vscode.workspace.workspaceFolders ?? []).map(watchFolder);
      this.refresh();
    };
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(() => rewatch()),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('nad.runsFolder') && rewatch()),
      { dispose: () => watchers.forEach((w) => w.dispose()) },
    );
  }

  /** Re-read the run folders now. */
  refresh(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    this.changed.fire(undefined);
  }

  /** A run writes several files in a burst: coalesce their events into one re-read. */
  private scheduleRefresh(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => this.refresh(), 150);
  }

  /** Asks squeue about the runs in Slurm (without blocking), redraws when a job's state changed, and again in 10 s while any runs. */
  private askSlurm(runs: RunSummary[]): void {
    if (this.slurmAsking) return;
    this.slurmAsking = true;
    void runningSlurmJobs(runs).then((jobs) => {
      this.slurmAsking = false;
      const key = (m: Map<string, SlurmJobState>): string => JSON.stringify([...m].map(([d, j]) => [d, j.state, j.reason]));
      const changed = key(jobs) !== key(this.slurm);
      this.slurm = jobs;
      if (changed) this.scheduleRefresh();
      clearTimeout(this.slurmTimer);
      if (jobs.size) this.slurmTimer = setTimeout(() => this.refresh(), 10_000);
    });
  }

  getChildren(element?: RunsNode): RunsNode[] {
    if (element) return [];
    const { runs, broken } = workspaceRuns();
    this.askSlurm(runs.map((r) => r.run));
    return [
      ...runs.map(({ folder, run }): RunsNode => ({ type: 'run', folder: folder as vscode.WorkspaceFolder, run })),
      ...broken.map(({ folder, broken: b }): RunsNode => ({ type: 'broken', folder: folder as vscode.WorkspaceFolder, broken: b })),
    ];
  }

  getTreeItem(node: RunsNode): vscode.TreeItem {
    const multiRoot = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
    const where = multiRoot ? `${node.folder.name} · ` : '';
    if (node.type === 'broken') {
      const item = new vscode.TreeItem(node.broken.id, vscode.TreeItemCollapsibleState.None);
      item.id = `${node.folder.uri.toString()}#${node.broken.id}`;
      item.description = `${where}unreadable`;
      item.tooltip = `${basename(node.broken.dir)}: ${node.broken.problem}`;
      item.iconPath = new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));
      item.contextValue = 'nad.brokenRun';
      item.resourceUri = vscode.Uri.file(node.broken.dir);
      return item;
    }
    const { run } = node;
    const item = new vscode.TreeItem(runLabel(run), vscode.TreeItemCollapsibleState.None);
    item.id = `${node.folder.uri.toString()}#${run.id}`;
    const job = this.slurm.get(run.dir);
    item.description = where + runDescription(run) + (job ? ` · ${describeSlurmJob(job)}` : '');
    item.tooltip = runTooltip(run);
    item.iconPath = STATE_ICONS[run.status.state];
    item.contextValue = `nad.run.${run.status.state}`;
    item.command = { command: 'nad.openRun', title: 'Open Run', arguments: [run.dir] };
    return item;
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    clearTimeout(this.slurmTimer);
    this.disposables.forEach((d) => d.dispose());
  }
}

/** Registers the Runs view and its commands; returns the view's model. */
export function registerHistory(context: vscode.ExtensionContext): NadExtensionApi {
  const runs = new RunsTreeProvider();
  const runsView = vscode.window.createTreeView(RUNS_VIEW_ID, { treeDataProvider: runs, showCollapseAll: false, canSelectMany: true });
  context.subscriptions.push(
    runs,
    runsView,
    vscode.commands.registerCommand('nad.showHistory', async () => {
      runs.refresh();
      await vscode.commands.executeCommand(`${RUNS_VIEW_ID}.focus`);
    }),
    vscode.commands.registerCommand('nad.refreshRuns', () => runs.refresh()),
  );
  return { runs, runsView };
}
