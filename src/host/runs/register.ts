// Registers the run commands, the run manager, its feedback and the run panels. Nothing heavy is
// loaded here: the engine (tfjs) runs only in worker processes.
import * as vscode from 'vscode';
import { nadLog } from '../output';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { JobConfig } from '../../runs/config';
import { RUN_PANEL_VIEW_TYPE, type PanelAction } from '../../shared/panel-protocol';
import { CONFIG_FILE_SUFFIX, ConfigFileError, modelPathOf, parseConfigFile } from '../../runs/config-file';
import { RunFeedback } from './feedback';
import { RunManager, type RunTask } from './manager';
import { RunPanels } from './panel';
import { cancelRun, deleteRun, openRun, rerun, resumeRun, revealRunFolder, type RunCommandsHost } from './commands';
import { folderFor, nadSettings, runsDirFor } from '../settings';
import { requireTrust } from '../trust';
import { checkImageWizard } from '../wizards/check-image';
import { eraseBackdoorWizard, evaluateWizard, finetuneWizard, trainWizard, type WizardHost } from '../wizards/commands';
import { defendWizard } from '../wizards/defend';
import { runAgainWithChanges } from '../wizards/run-again';
import { checkRunsCommand } from './check-runs';

export interface RunsApi {
  readonly manager: RunManager;
  readonly panels: RunPanels;
  readonly log: vscode.LogOutputChannel;
}

async function pickConfigFile(): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles(`**/*${CONFIG_FILE_SUFFIX}`, '**/{node_modules,.git}/**', 200);
  if (files.length === 0) {
    void vscode.window
      .showInformationMessage(
        `NAD: no ${CONFIG_FILE_SUFFIX} files in the workspace. "NAD: Erase Backdoor" can save one at its last step.`,
        'Erase Backdoor',
      )
      .then((a) => a && vscode.commands.executeCommand('nad.eraseBackdoor'));
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    files.map((u) => ({ label: basename(u.fsPath), description: vscode.workspace.asRelativePath(u, true), uri: u })),
    { placeHolder: 'Run which config file?' },
  );
  return pick?.uri;
}

function runConfigFile(host: WizardHost, uri: vscode.Uri): RunTask | undefined {
  const file = uri.fsPath;
  const folder = folderFor(uri);
  if (!folder) return undefined;
  let config: JobConfig;
  try {
    config = parseConfigFile(file, readFileSync(file, 'utf8'));
  } catch (e) {
    const problem = e instanceof ConfigFileError ? e.problem : (e as Error).message;
    void vscode.window
      .showErrorMessage(`NAD: ${vscode.workspace.asRelativePath(uri)}: ${problem}`, 'Open Config File')
      .then((a) => a && vscode.window.showTextDocument(uri));
    return undefined;
  }
  // A file that leaves the backend to "auto" follows the nad.backend setting.
  const backend = config.backend === 'auto' ? nadSettings(uri).backend : config.backend;
  const model = modelPathOf(config);
  return host.manager.start({
    title: `${basename(file)}${model ? ` (${basename(model)})` : ''}`,
    job: { kind: 'job', config: { ...config, backend } },
    cwd: folder.uri.fsPath,
    runsDir: runsDirFor(folder),
    configFile: file,
  });
}

async function runDemo(host: WizardHost, arg: unknown): Promise<RunTask | undefined> {
  const folder = folderFor();
  if (!folder) {
    void vscode.window.showErrorMessage('NAD: open a folder first; the demo stores its runs in it (.nad/runs).');
    return undefined;
  }
  let quick = typeof arg === 'object' && arg !== null ? (arg as { quick?: unknown }).quick : undefined;
  if (typeof quick !== 'boolean') {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Quick', description: '2 + 2 + 4 epochs, about a minute', quick: true },
        { label: 'Full', description: '3 + 10 + 10 epochs, several minutes', quick: false },
      ],
      {
        placeHolder:
          'The demo on the built-in MNIST digits: train a backdoored model, finetune a teacher on 5% clean data, erase the backdoor with NAD',
      },
    );
    if (!pick) return undefined;
    quick = pick.quick;
  }
  return host.manager.start({
    title: `Demo on MNIST${quick ? ' (quick)' : ''}`,
    job: { kind: 'demo', quick: quick as boolean, backend: nadSettings(folder.uri).backend, seed: 0 },
    cwd: folder.uri.fsPath,
    runsDir: runsDirFor(folder),
  });
}

export function registerRuns(context: vscode.ExtensionContext, refreshRuns: () => void): RunsApi {
  const log = nadLog();
  const workerPath = vscode.Uri.joinPath(context.extensionUri, 'dist', 'worker.js').fsPath;
  const manager = new RunManager(
    workerPath,
    () => nadSettings().maxConcurrentRuns,
    () => nadSettings().workerMemoryLimitMb,
  );
  // Panel buttons map onto the same commands as the Runs view's context menu.
  const onAction = (action: PanelAction, runDir: string): void => {
    const command: Record<PanelAction, string> = {
      cancel: 'nad.cancelRun',
      resume: 'nad.resumeRun',
      rerun: 'nad.rerun',
      rerunWithChanges: 'nad.rerunWithChanges',
      revealFolder: 'nad.revealRunFolder',
      showLog: 'nad.showLog',
    };
    void vscode.commands.executeCommand(command[action], runDir);
  };
  const panels = new RunPanels(context.extensionUri, manager, log, onAction);
  const feedback = new RunFeedback(manager, log, { openRun: (dir) => panels.open(dir) });
  const host: RunCommandsHost & WizardHost = { manager, panels, log, refreshRuns, requireTrust, extensionPath: context.extensionPath };
  // The tree refreshes from file events too; this makes state changes show at once.
  manager.onDidChangeTask((t) => t.state !== 'running' && refreshRuns());

  const trusted =
    <A extends unknown[], R>(what: string, fn: (...args: A) => R) =>
    (...args: A): R | undefined =>
      requireTrust(what) ? fn(...args) : undefined;
  const uriArg = (a: unknown): vscode.Uri | undefined => (a instanceof vscode.Uri ? a : undefined);

  context.subscriptions.push(
    log,
    manager,
    feedback,
    panels,
    vscode.window.registerWebviewPanelSerializer(RUN_PANEL_VIEW_TYPE, panels),
    vscode.commands.registerCommand(
      'nad.eraseBackdoor',
      trusted('Erasing a backdoor', (a?: unknown) => eraseBackdoorWizard(host, uriArg(a))),
    ),
    vscode.commands.registerCommand(
      'nad.trainBackdoored',
      trusted('Training a model', (a?: unknown) => trainWizard(host, uriArg(a))),
    ),
    vscode.commands.registerCommand(
      'nad.finetuneTeacher',
      trusted('Finetuning a teacher', (a?: unknown) => finetuneWizard(host, uriArg(a))),
    ),
    vscode.commands.registerCommand(
      'nad.checkImageStrip',
      trusted('Checking an image', (a?: unknown, all?: unknown) =>
        checkImageWizard(host, uriArg(a), Array.isArray(all) ? all.filter((u): u is vscode.Uri => u instanceof vscode.Uri) : undefined),
      ),
    ),
    vscode.commands.registerCommand(
      'nad.evaluateModel',
      trusted('Evaluating a model', (a?: unknown) => evaluateWizard(host, uriArg(a))),
    ),
    vscode.commands.registerCommand(
      'nad.defendModel',
      trusted('Running a defense', (a?: unknown, method?: unknown) =>
        defendWizard(host, uriArg(a), typeof method === 'string' ? method : undefined),
      ),
    ),
    vscode.commands.registerCommand(
      'nad.detectBackdoor',
      trusted('Running a backdoor detector', (a?: unknown, method?: unknown) =>
        defendWizard(host, uriArg(a), typeof method === 'string' ? method : undefined, 'detect'),
      ),
    ),
    vscode.commands.registerCommand(
      'nad.runConfigFile',
      trusted('Running a config file', async (a?: unknown) => {
        const uri = uriArg(a) ?? (await pickConfigFile());
        return uri ? runConfigFile(host, uri) : undefined;
      }),
    ),
    vscode.commands.registerCommand(
      'nad.runDemo',
      trusted('Running the demo', (a?: unknown) => runDemo(host, a)),
    ),
    vscode.commands.registerCommand('nad.cancelRun', (a?: unknown) => cancelRun(host, a)),
    vscode.commands.registerCommand('nad.openRun', (a?: unknown) => openRun(host, a)),
    vscode.commands.registerCommand('nad.resumeRun', (a?: unknown) => resumeRun(host, a)),
    vscode.commands.registerCommand('nad.rerun', (a?: unknown) => rerun(host, a)),
    vscode.commands.registerCommand(
      'nad.rerunWithChanges',
      trusted('Running a job', (a?: unknown) => runAgainWithChanges(host, a)),
    ),
    vscode.commands.registerCommand('nad.revealRunFolder', (a?: unknown) => revealRunFolder(a)),
    vscode.commands.registerCommand('nad.deleteRun', (a?: unknown) => deleteRun(host, a)),
    vscode.commands.registerCommand('nad.showLog', () => log.show(true)),
    vscode.commands.registerCommand('nad.checkRuns', (a?: unknown) => checkRunsCommand(log, refreshRuns, a)),
  );
  return { manager, panels, log };
}
