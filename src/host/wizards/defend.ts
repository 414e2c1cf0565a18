// "NAD: Defend Model…" and "NAD: Detect Backdoor…": pick a defense from the registry (registry-info.ts)
// that repairs (or detects), then the questions every defense shares, then one question per parameter the
// defense declares, with its default. Detection trains nothing: no epochs question.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { JobConfig } from '../../runs/config';
import type { RunTask } from '../runs/manager';
import { nadSettings } from '../settings';
import { ask, folderOrWarn, jobBase, launch, newDraft, stamp, stem, titleOf, type Entry, type WizardHost } from './commands';
import type { Prefill } from './prefill';
import type { PickItem } from './multi-step';
import { askParam, readDefenses, type DefenseInfo, type DefenseMode } from './registry-info';
import { askData, askEpochs, askFinish, askModel, askSubset, askTarget, askTrigger, type Ask } from './steps';

export async function defendWizard(
  host: WizardHost,
  modelUri?: vscode.Uri,
  method?: string,
  mode: DefenseMode = 'repair',
  prefill?: Prefill,
): Promise<RunTask | undefined> {
  const folder = folderOrWarn(modelUri ?? prefill?.runUri);
  if (!folder) return undefined;
  const defenses = readDefenses(host.extensionPath).filter((x) => x.modes.includes(mode));
  const detect = mode === 'detect';
  const d = newDraft(folder, modelUri?.fsPath);
  d.method = defenses.some((x) => x.name === method) ? method : undefined;
  const chosen = (): DefenseInfo | undefined => defenses.find((x) => x.name === d.method);
  if (prefill) {
    // The run's defense is kept; its own epochs stand where the run's config left them to it.
    d.epochs = chosen()?.training.epochs ?? d.epochs;
    prefill.apply(d);
  }
  const askDefense: Ask = async (w, x) => {
    const items = defenses.map((def): PickItem<string> => ({
      label: def.title,
      description: def.name,
      detail: `${def.description} Needs ${def.needs}.`,
      value: def.name,
    }));
    x.method = await w.pick(
      detect ? 'Which detector? Each line says what it needs.' : 'Which defense? Each line says what it needs.',
      items,
      (v) => v === x.method,
    );
    const def = chosen();
    if (def) {
      x.epochs = def.training.epochs;
      x.params = Object.fromEntries(def.params.map((p) => [p.key, p.default]));
    }
  };
  // The parameter questions depend on the defense picked; Back re-asks the pick, and these follow it.
  const paramEntries: Entry[] = defenses.flatMap((def) => def.params.map((p): Entry => [(x) => x.method === def.name, askParam(p)]));
  const ok = await ask(titleOf(detect ? 'NAD: Detect Backdoor' : 'NAD: Defend Model', prefill), d, [
    [() => method === undefined || !chosen(), askDefense],
    [() => !modelUri, askModel(detect ? 'Suspect model to examine' : 'Backdoored model to repair')],
    askData('Clean data the defender has'),
    askSubset,
    askTrigger,
    askTarget,
    ...paramEntries,
    [() => !detect, askEpochs('Finetuning epochs')],
    askFinish((x) => `${x.method ?? 'defend'}${detect ? '-detect' : ''}-${stem(x.model ?? 'model')}-${stamp()}`),
  ]);
  const def = chosen();
  if (!ok || !def || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'defend',
    method: def.name,
    ...(detect ? { mode } : {}),
    name: `${def.name}${detect ? '-detect' : ''}-${stem(d.model)}`,
    ...jobBase(d),
    model: d.model,
    data: d.data,
    ...d.clean,
    // The rest of the schedule is the defense's own; the run's config.json records all of it.
    training: detect ? {} : { epochs: d.epochs, batchSize: nadSettings(folder.uri).defaultBatchSize },
    params: d.params,
  };
  // Run Again With Changes: the run's own config with the changed answers over it.
  const job = prefill ? prefill.finish(d) : config;
  if (!job) return undefined;
  const title = `${def.title}${detect ? ' detection' : ''} (${basename(d.model)})`;
  return launch(host, d, job, title, () => void defendWizard(host, undefined, undefined, mode));
}
