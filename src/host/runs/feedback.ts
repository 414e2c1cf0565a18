// What a person sees of runs outside their panel: a progress notification with Cancel, a status bar
// item, the "NAD" output channel, and a message when a run ends, with the way out when it failed.
import * as vscode from 'vscode';
import { phaseLabel, type RunProgress } from '../../shared/run-state';
import { formatDuration } from '../../shared/format';
import type { RunManager, RunTask } from './manager';
import { openSettings } from '../settings';

export interface FeedbackActions {
  readonly openRun: (runDir: string) => void;
}

/** "NAD epoch 2/5 · step 30/63 · loss 0.4213 · ETA 1m 20s" */
export function describeProgress(p: RunProgress | undefined, acc?: number, asr?: number): string {
  if (!p) return 'starting…';
  const parts = [`${phaseLabel(p.phase)} epoch ${Math.max(1, p.epoch)}/${p.epochs}`];
  if (p.steps > 0) parts.push(`step ${p.step}/${p.steps}`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (acc !== undefined && asr !== undefined) parts.push(`ACC ${acc.toFixed(1)}%`, `ASR ${asr.toFixed(1)}%`);
  if (p.etaSeconds !== undefined) parts.push(`ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join(' · ');
}

function lastEpoch(task: RunTask): { acc?: number; asr?: number } {
  const e = task.snapshot?.epochs;
  return e && e.length ? e[e.length - 1] : {};
}

export class RunFeedback implements vscode.Disposable {
  private readonly status = vscode.window.createStatusBarItem('nad.runs', vscode.StatusBarAlignment.Left, 50);
  private readonly notified = new Map<number, (task: RunTask) => void>();
  private readonly disposables: vscode.Disposable[] = [this.status];

  constructor(
    private readonly manager: RunManager,
    readonly log: vscode.LogOutputChannel,
    private readonly actions: FeedbackActions,
  ) {
    this.status.name = 'NAD runs';
    this.disposables.push(
      manager.onOutput(({ line, level }) => (level === 'error' ? log.error(line) : level === 'warn' ? log.warn(line) : log.info(line))),
      manager.onDidChangeTask((task) => this.changed(task)),
    );
  }

  private changed(task: RunTask): void {
    if (task.state === 'running' && !this.notified.has(task.id) && task.request.notify !== false) this.notify(task);
    this.notified.get(task.id)?.(task);
    this.updateStatusBar();
    if (task.state !== 'queued' && task.state !== 'running' && this.notified.has(task.id)) {
      this.notified.delete(task.id);
      void this.ended(task);
    }
  }

  /** A notification that follows the task until it ends; its Cancel button cancels the run. */
  private notify(task: RunTask): void {
    let update: (t: RunTask) => void = () => undefined;
    this.notified.set(task.id, (t) => update(t));
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `NAD: ${task.request.title}`, cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          token.onCancellationRequested(() => this.manager.cancel(task));
          let last = 0;
          update = (t) => {
            if (t.state !== 'running') return resolve();
            const now = Date.now();
            if (now - last < 400) return;
            last = now;
            const { acc, asr } = lastEpoch(t);
            progress.report({ message: t.cancelRequested ? 'cancelling…' : describeProgress(t.snapshot?.progress, acc, asr) });
          };
          void task.ended.then(() => resolve());
        }),
    );
  }

  private updateStatusBar(): void {
    const active = this.manager.active();
    const running = active.filter((t) => t.state === 'running');
    if (active.length === 0) {
      this.status.hide();
      return;
    }
    const first = running[0];
    const queued = active.length - running.length;
    const p = first?.snapshot?.progress;
    const what = first
      ? `${phaseLabel(p?.phase ?? 'train')} ${p ? `${Math.max(1, p.epoch)}/${p.epochs}` : '…'}${p?.etaSeconds !== undefined ? ` · ETA ${formatDuration(p.etaSeconds)}` : ''}`
      : 'queued';
    this.status.text = `$(sync~spin) NAD: ${what}${running.length > 1 ? ` (+${running.length - 1} running)` : ''}${queued ? ` (+${queued} queued)` : ''}`;
    this.status.tooltip = active
      .map((t) => `${t.request.title}: ${t.state === 'queued' ? 'queued' : describeProgress(t.snapshot?.progress)}`)
      .join('\n');
    this.status.command = first?.runDir
      ? { command: 'nad.openRun', title: 'Open Run', arguments: [first.runDir] }
      : { command: 'nad.showLog', title: 'Show Log' };
    this.status.show();
  }

  private async ended(task: RunTask): Promise<void> {
    const runDir = task.runDir;
    if (task.state === 'finished' && task.slurm) {
      void vscode.window.showInformationMessage(`NAD: ${task.request.title} submitted to Slurm; the Runs view shows its job's state.`);
      return;
    }
    if (task.state === 'finished') {
      const row = task.snapshot?.table.at(-1);
      const nums = row ? `: ACC ${row.acc.toFixed(2)}%, ASR ${row.asr.toFixed(2)}%` : '';
      const pick = await vscode.window.showInformationMessage(
        `NAD: ${task.request.title} finished${nums}`,
        ...(runDir ? ['Open Run'] : []),
      );
      if (pick === 'Open Run' && runDir) this.actions.openRun(runDir);
      return;
    }
    if (task.state === 'cancelled') {
      void vscode.window.showInformationMessage(
        `NAD: ${task.request.title} cancelled${runDir ? '; its run folder is kept and can be resumed' : ''}.`,
      );
      return;
    }
    const f = task.failure;
    if (!f) return;
    const advice: Record<typeof f.kind, string> = {
      input: '',
      diverged: '',
      backend: ' Choose another backend in the "nad.backend" setting.',
      crash: ' The last lines of its output are in the NAD log.',
      internal: ' Details are in the NAD log.',
    };
    const actions: string[] = [];
    if (f.kind === 'input' && task.request.retry) actions.push('Pick Another File');
    if (task.request.configFile) actions.push('Open Config File');
    if (f.kind === 'backend') actions.push('Open Settings');
    if (runDir) actions.push('Open Run');
    actions.push('Show Log');
    const pick = await vscode.window.showErrorMessage(
      `NAD: ${task.request.title} failed: ${f.message.replace(/\.$/, '')}.${advice[f.kind]}`,
      ...actions,
    );
    switch (pick) {
      case 'Pick Another File':
        task.request.retry?.();
        break;
      case 'Open Config File':
        if (task.request.configFile) await vscode.window.showTextDocument(vscode.Uri.file(task.request.configFile));
        break;
      case 'Open Settings':
        await openSettings('backend');
        break;
      case 'Open Run':
        if (runDir) this.actions.openRun(runDir);
        break;
      case 'Show Log':
        this.log.show(true);
        break;
    }
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }
}
