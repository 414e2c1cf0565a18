// The run panel: one webview per run folder, live while a worker writes the run, read from the folder
// otherwise. A reloaded window brings panels back through the serializer, which re-reads the folder.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { HostToPanel, PanelAction, PanelSnapshot, PanelState, PanelToHost, RenderedPanel } from '../../shared/panel-protocol';
import { RUN_PANEL_VIEW_TYPE } from '../../shared/panel-protocol';
import { EMPTY_RUN_VIEW } from '../../shared/run-state';
import { webviewHtml, webviewOptions } from '../webview-html';
import { readRunSnapshot } from '../../runs/run-folder';
import type { RunManager } from './manager';
import { panelToHostSchema } from '../../shared/message-schemas';
import { onCheckedMessage } from '../webview-messages';

export type PanelActionHandler = (action: PanelAction, runDir: string) => void;

/** What the panel shows when the folder cannot be read (deleted, hand-edited). */
function problemSnapshot(runDir: string, problem: string): PanelSnapshot {
  const id = basename(runDir);
  return {
    run: {
      id,
      dir: runDir,
      name: id,
      kind: 'unknown',
      state: 'failed',
      error: `The run folder cannot be read: ${problem}`,
      facts: [],
      resumable: false,
    },
    ...EMPTY_RUN_VIEW,
  };
}

export class RunPanel {
  private ready = false;
  private nextProbe = 1;
  private readonly probes = new Map<number, (r: RenderedPanel) => void>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    private dir: string,
    private readonly owner: RunPanels,
  ) {
    panel.webview.options = webviewOptions(owner.extensionUri);
    panel.webview.html = webviewHtml(panel.webview, owner.extensionUri, { script: 'panel.js', styles: ['panel.css'], title: 'NAD run' });
    this.disposables.push(
      onCheckedMessage(panel.webview, 'run panel', panelToHostSchema, (m) => this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
      owner.manager.onPanelUpdate(({ runDir, msg }) => {
        if (runDir === this.dir) this.post(msg);
      }),
    );
    this.setTitle(this.current());
  }

  get runDir(): string {
    return this.dir;
  }

  /** Show another run in this panel (the demo's next run). */
  show(runDir: string): void {
    this.dir = runDir;
    this.sendSnapshot();
  }

  /** Reads back what the panel's DOM shows. */
  probe(timeoutMs = 10_000): Promise<RenderedPanel> {
    const id = this.nextProbe++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.probes.delete(id);
        reject(new Error(`the panel did not answer within ${timeoutMs} ms (loaded: ${this.ready})`));
      }, timeoutMs);
      this.probes.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      if (this.ready) void this.panel.webview.postMessage({ type: 'probe', id } satisfies HostToPanel);
    });
  }

  private current(): PanelSnapshot {
    const live = this.owner.manager.liveSnapshot(this.dir);
    if (live) return live;
    const read = readRunSnapshot(this.dir);
    return 'problem' in read ? problemSnapshot(this.dir, read.problem) : read;
  }

  private setTitle(s: PanelSnapshot): void {
    this.panel.title = `NAD: ${s.run.name}`;
  }

  private sendSnapshot(): void {
    const snapshot = { ...this.current(), canRun: vscode.workspace.isTrusted };
    this.setTitle(snapshot);
    this.post({ type: 'snapshot', snapshot });
  }

  /** The workspace became trusted: Resume and Run Again are offered again. */
  trustGranted(): void {
    this.post({ type: 'trust', canRun: true });
  }

  private post(msg: HostToPanel): void {
    if (msg.type === 'snapshot' || msg.type === 'run')
      this.setTitle(msg.type === 'snapshot' ? msg.snapshot : { ...this.current(), run: msg.run });
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private receive(m: PanelToHost): void {
    switch (m.type) {
      case 'ready':
        this.ready = true;
        this.sendSnapshot();
        for (const id of this.probes.keys()) void this.panel.webview.postMessage({ type: 'probe', id } satisfies HostToPanel);
        return;
      case 'copy':
        void vscode.env.clipboard
          .writeText(m.text)
          .then(() => vscode.window.setStatusBarMessage(`NAD: table copied as ${m.format === 'csv' ? 'CSV' : 'Markdown'}`, 3000));
        return;
      case 'action':
        this.owner.onAction(m.action, this.dir);
        return;
      case 'rendered':
        this.probes.get(m.id)?.(m.panel);
        this.probes.delete(m.id);
        return;
      case 'error':
        this.owner.log.error(`run panel: ${m.message}`);
        return;
      default: {
        const _: never = m;
        return _;
      }
    }
  }

  dispose(): void {
    this.owner.forget(this);
    this.disposables.forEach((d) => d.dispose());
  }
}

export class RunPanels implements vscode.WebviewPanelSerializer<PanelState>, vscode.Disposable {
  private readonly panels = new Set<RunPanel>();
  private readonly subscription: vscode.Disposable;
  private readonly trust: vscode.Disposable;

  constructor(
    readonly extensionUri: vscode.Uri,
    readonly manager: RunManager,
    readonly log: vscode.LogOutputChannel,
    readonly onAction: PanelActionHandler,
  ) {
    // A run started: open its panel, or move the panel of the task's previous run (the demo) to it.
    this.subscription = manager.onRunStarted(({ task, runDir, previous }) => {
      const following = previous ? this.find(previous) : undefined;
      if (following) following.show(runDir);
      else if (!previous && task.request.openPanel !== false) this.open(runDir, { preserveFocus: true });
    });
    this.trust = vscode.workspace.onDidGrantWorkspaceTrust(() => this.panels.forEach((p) => p.trustGranted()));
  }

  find(runDir: string): RunPanel | undefined {
    return [...this.panels].find((p) => p.runDir === runDir);
  }

  /** Open (or reveal) the panel of a run folder. */
  open(runDir: string, opts: { preserveFocus?: boolean } = {}): RunPanel {
    const existing = this.find(runDir);
    if (existing) {
      existing.panel.reveal(undefined, opts.preserveFocus);
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(
      RUN_PANEL_VIEW_TYPE,
      `NAD: ${basename(runDir)}`,
      { viewColumn: vscode.ViewColumn.Active, preserveFocus: opts.preserveFocus },
      webviewOptions(this.extensionUri),
    );
    const p = new RunPanel(panel, runDir, this);
    this.panels.add(p);
    return p;
  }

  async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: PanelState | undefined): Promise<void> {
    if (!state || typeof state.runDir !== 'string') {
      panel.dispose();
      return;
    }
    this.panels.add(new RunPanel(panel, state.runDir, this));
  }

  forget(p: RunPanel): void {
    this.panels.delete(p);
  }

  all(): readonly RunPanel[] {
    return [...this.panels];
  }

  dispose(): void {
    this.subscription.dispose();
    this.trust.dispose();
    for (const p of [...this.panels]) p.panel.dispose();
  }
}
