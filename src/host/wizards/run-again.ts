// "NAD: Run Again With Changes": the wizard of a run's kind (Erase Backdoor, Train Backdoored Model,
// Finetune Teacher, Defend Model / Detect Backdoor with the run's defense, Evaluate Model), every answer
// prefilled from the run's config.json; Enter through what stays, change what should not. The result is a
// new run (the old folder is never written); what the wizard does not ask is kept as the run had it.
import * as vscode from 'vscode';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ParamSpec } from '../../engine/params';
import type { RunTask } from '../runs/manager';
import { displayPath, pickRuns, runFromArg } from '../runs/pick';
import { folderFor } from '../settings';
import { eraseBackdoorWizard, evaluateWizard, finetuneWizard, trainWizard, type WizardHost } from './commands';
import { defendWizard } from './defend';
import { WIZARD_KINDS } from '../../shared/panel-protocol';
import { readPrefill, type Prefill } from './prefill';
import { readAttacks, readDefenses } from './registry-info';

/** The run an argument names (a Runs row, a folder, a file in it), or the one the person picks. */
async function runDirOf(arg: unknown): Promise<string | undefined> {
  if (arg !== undefined) {
    const ref = runFromArg(arg);
    if (!ref) throw new Error('Run Again With Changes: this is not a run folder or a file inside one.');
    if ('broken' in ref) throw new Error(`Run folder ${ref.broken.id} cannot be read: ${ref.broken.problem}`);
    return ref.run.dir;
  }
  const [picked] = await pickRuns({
    title: 'Run which run again, with changes? Its wizard opens with every answer filled in.',
    many: false,
    filter: (r) => WIZARD_KINDS.includes(r.run.status.kind),
    emptyMessage: 'NAD: no run to start from: erase, train, finetune, defend, detect and evaluate runs can be run again with changes.',
  });
  return picked?.run.dir;
}

/** The declared parameters of the run's defense or attack, to check its stored values against. */
function declaredParams(host: WizardHost, raw: Record<string, unknown>): readonly ParamSpec[] {
  if (raw['kind'] === 'defend') return readDefenses(host.extensionPath).find((d) => d.name === raw['method'])?.params ?? [];
  if (raw['kind'] === 'train') {
    const attack = raw['attack'];
    const name = typeof attack === 'object' && attack !== null ? (attack as { name?: unknown }).name : undefined;
    return readAttacks(host.extensionPath).find((a) => a.name === name)?.params ?? [];
  }
  return [];
}

export async function runAgainWithChanges(host: WizardHost, arg: unknown): Promise<RunTask | undefined> {
  const dir = await runDirOf(arg);
  if (!dir) return undefined;
  const file = join(dir, 'config.json');
  const shown = displayPath(file);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    void vscode.window
      .showErrorMessage(`NAD: ${shown}: cannot be read as a run's config (${(e as Error).message}).`, 'Open Config File')
      .then((a) => a && vscode.window.showTextDocument(vscode.Uri.file(file)));
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    void vscode.window.showErrorMessage(`NAD: ${shown}: expected a JSON object with a "kind".`);
    return undefined;
  }
  const config = raw as Record<string, unknown>;
  const kind = config['kind'];
  if (typeof kind !== 'string' || !WIZARD_KINDS.includes(kind)) {
    void vscode.window.showInformationMessage(
      `NAD: ${shown}: a "${String(kind)}" run has no wizard to change it in; "NAD: Run Again" runs its config as it is.`,
    );
    return undefined;
  }
  const runUri = vscode.Uri.file(dir);
  // Paths in a run's config are as the CLI or the wizard gave them: relative ones are the workspace folder's.
  const cwd = folderFor(runUri)?.uri.fsPath ?? dirname(dir);
  const prefill = readPrefill(config, file, cwd, runUri, declaredParams(host, config));
  if (prefill.problems.length > 0)
    void vscode.window
      .showWarningMessage(`NAD: ${shown}: ${prefill.problems.join('; ')}. The wizard offers the default instead.`, 'Open Config File')
      .then((a) => a && vscode.window.showTextDocument(vscode.Uri.file(file)));
  return openWizard(host, kind, prefill);
}

function openWizard(host: WizardHost, kind: string, prefill: Prefill): Promise<RunTask | undefined> {
  switch (kind) {
    case 'erase':
      return eraseBackdoorWizard(host, undefined, prefill);
    case 'train':
      return trainWizard(host, undefined, prefill);
    case 'finetune':
      return finetuneWizard(host, undefined, prefill);
    case 'defend':
      return defendWizard(host, undefined, prefill.method, prefill.mode, prefill);
    default:
      return evaluateWizard(host, undefined, prefill);
  }
}
