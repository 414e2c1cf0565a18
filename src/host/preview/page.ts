// "NAD: Preview Attack": what an attack does to images, before spending an hour training on it. The Train
// wizard's attack questions (or a train *.nad.json from the Explorer) give a train config; a worker poisons a
// seeded sample of its data (src/runs/jobs/preview.ts, never in the extension host) and the page, an editor
// tab, draws the trigger gallery: clean, poisoned and difference for a few training images, and the test-time
// trigger. Nothing is stored; the page keeps its state for a window reload.
import * as vscode from 'vscode';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { TrainJobConfig } from '../../runs/config';
import { CONFIG_FILE_SUFFIX, parseConfigFile } from '../../runs/config-file';
import type { PreviewHostMessage, PreviewRendered, PreviewState } from '../../shared/preview-protocol';
import type { WorkerToHost } from '../../shared/worker-protocol';
import { WorkerClient } from '../runs/worker-client';
import { folderFor } from '../settings';
import { requireTrust } from '../trust';
import { webviewHtml, webviewOptions } from '../webview-html';
import { askTrainConfig, folderOrWarn } from '../wizards/commands';
import { previewViewSchema } from '../../shared/message-schemas';
import { onCheckedMessage } from '../webview-messages';

export const PREVIEW_VIEW_TYPE = 'nad.attackPreview';
const LOG_LINES = 40;

export class PreviewPage {
  private state: PreviewState;
  private worker: WorkerClient | undefined;
  private nextProbe = 1;
  private readonly probes = new Map<number, (r: PreviewRendered) => void>();
  private settle: (s: PreviewState) => void = () => undefined;
  /** Resolves with the final state (done, failed or cancelled). */
  readonly ended: Promise<PreviewState>;

  constructor(
    readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    initial: PreviewState,
  ) {
    this.state = initial;
    this.ended = new Promise((resolve) => (this.settle = resolve));
    if (initial.status !== 'running') this.settle(initial);
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      script: 'preview.js',
      styles: ['page.css', 'panel.css'],
      title: 'Attack preview',
    });
    onCheckedMessage(panel.webview, 'attack preview', previewViewSchema, (m) => {
      if (m.type === 'ready') this.post({ type: 'state', state: this.state });
      else if (m.type === 'cancel') this.worker?.cancel();
      else {
        this.probes.get(m.id)?.(m.rendered);
        this.probes.delete(m.id);
      }
    });
    panel.onDidDispose(() => this.worker?.kill());
  }

  get current(): PreviewState {
    return this.state;
  }

  private post(m: PreviewHostMessage): void {
    void this.panel.webview.postMessage(m);
  }

  private update(next: Partial<PreviewState>): void {
    this.state = { ...this.state, ...next };
    this.post({ type: 'state', state: this.state });
    if (this.state.status !== 'running') this.settle(this.state);
  }

  /** What the page draws, read back from its DOM (tests). */
  probe(timeoutMs = 10_000): Promise<PreviewRendered> {
    const id = this.nextProbe++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the preview page did not answer')), timeoutMs);
      this.probes.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.post({ type: 'probe', id });
    });
  }

  /** Runs the preview in a worker; the page follows it. */
  start(workerPath: string, config: TrainJobConfig, cwd: string, log: vscode.LogOutputChannel): void {
    const lines: string[] = [];
    this.worker = new WorkerClient(
      workerPath,
      { job: { kind: 'preview', config }, cwd, runsDir: cwd },
      {
        onMessage: (m: WorkerToHost) => {
          switch (m.type) {
            case 'images':
              this.update({ figures: [...this.state.figures.filter((f) => f.id !== m.id), m] });
              return;
            case 'log':
              lines.push(m.message);
              if (lines.length > LOG_LINES) lines.shift();
              this.update({ log: [...lines] });
              return;
            case 'facts':
              this.update({ summary: m.facts.map((f) => (f.label === 'Attack' ? f.value : `${f.label}: ${f.value}.`)).join(' ') });
              return;
            case 'done':
              this.update({ status: 'done' });
              return;
            case 'failed':
              log.error(`attack preview failed: ${m.message}`);
              this.update({ status: 'failed', error: m.message });
              void vscode.window.showErrorMessage(`NAD: the attack preview failed: ${m.message}`);
              return;
            case 'cancelled':
              this.update({ status: 'cancelled' });
              return;
            default:
              return;
          }
        },
        onOutput: (line) => log.info(`[preview] ${line}`),
        onExit: (exit) => {
          if (this.state.status !== 'running') return;
          const why = exit.stderrTail.slice(-3).join(' ') || `exit code ${exit.code ?? exit.signal}`;
          this.update({ status: 'failed', error: `the preview worker stopped without a result: ${why}` });
        },
      },
    );
  }
}

export class PreviewPages implements vscode.Disposable {
  private readonly pages: PreviewPage[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly workerPath: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The newest open page (tests). */
  latest(): PreviewPage | undefined {
    return this.pages[this.pages.length - 1];
  }

  attach(panel: vscode.WebviewPanel, state: PreviewState): PreviewPage {
    const page = new PreviewPage(panel, this.extensionUri, state);
    this.pages.push(page);
    panel.onDidDispose(() => this.pages.splice(this.pages.indexOf(page), 1));
    return page;
  }

  open(config: TrainJobConfig, cwd: string, title: string): PreviewPage {
    const panel = vscode.window.createWebviewPanel(
      PREVIEW_VIEW_TYPE,
      `Preview: ${title}`,
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    const page = this.attach(panel, { title: `Preview: ${title}`, status: 'running', figures: [], log: [] });
    page.start(this.workerPath, config, cwd, this.log);
    return page;
  }

  dispose(): void {
    for (const p of [...this.pages]) p.panel.dispose();
  }
}

/** A train config from a *.nad.json file; other kinds are refused with what to use instead. */
function trainConfigOf(file: string): TrainJobConfig {
  const config = parseConfigFile(file, readFileSync(file, 'utf8'));
  if (config.kind !== 'train') throw new Error(`${basename(file)} is a '${config.kind}' config; an attack preview needs a 'train' config`);
  return config;
}

export function registerPreview(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): PreviewPages {
  const workerPath = vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath;
  const pages = new PreviewPages(context.extensionUri, workerPath, log);
  const previewAttack = async (arg?: unknown): Promise<PreviewPage | undefined> => {
    if (!requireTrust('Previewing an attack')) return undefined;
    const uri = arg instanceof vscode.Uri ? arg : undefined;
    if (uri && uri.fsPath.endsWith(CONFIG_FILE_SUFFIX)) {
      const folder = folderFor(uri);
      let config: TrainJobConfig;
      try {
        config = trainConfigOf(uri.fsPath);
      } catch (e) {
        void vscode.window.showErrorMessage(`NAD: ${e instanceof Error ? e.message : String(e)}`);
        return undefined;
      }
      return pages.open(config, folder?.uri.fsPath ?? vscode.Uri.joinPath(uri, '..').fsPath, basename(uri.fsPath));
    }
    const folder = folderOrWarn(uri);
    if (!folder) return undefined;
    const t = await askTrainConfig(context.extensionPath, folder, uri, true);
    return t ? pages.open(t.config, folder.uri.fsPath, t.title) : undefined;
  };
  context.subscriptions.push(
    pages,
    vscode.window.registerWebviewPanelSerializer(PREVIEW_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
        const s = state as PreviewState | undefined;
        if (!s || typeof s.title !== 'string' || !Array.isArray(s.figures)) return panel.dispose();
        // A preview cut short by the reload is not resumed: say so.
        pages.attach(
          panel,
          s.status === 'running' ? { ...s, status: 'cancelled', error: 'The window reloaded before the preview finished.' } : s,
        );
      },
    }),
    vscode.commands.registerCommand('nad.previewAttack', previewAttack),
  );
  return pages;
}
