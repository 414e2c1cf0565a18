// Activation only: wires the host modules (everything that talks to VS Code lives in src/host/).
// The engine (tfjs) is never loaded here: runs happen in worker processes.
import { LOADED_AT } from './host/activation-clock';
import type { ExtensionContext } from 'vscode';
import type { NadApi, ReviewApi } from './host/api';
import { registerAttentionEditor } from './host/attention/editor';
import { imageAttentionInWorker } from './host/attention/image-command';
import { registerRuns } from './host/runs/register';
import { registerCompare } from './host/history/compare-page';
import { registerHistory } from './host/history/runs-tree';
import { registerHistoryPage } from './host/history/table-page';
import { registerMatrices } from './host/matrix/page';
import { registerPreview } from './host/preview/page';

// Our modules are evaluated by now; VS Code may call activate() a little later.
const EVALUATED_AT = performance.now();

export function activate(context: ExtensionContext): NadApi & ReviewApi {
  const started = performance.now();
  const history = registerHistory(context);
  const runs = registerRuns(context, () => history.runs.refresh());
  const attention = registerAttentionEditor(context, imageAttentionInWorker(runs.manager));
  const compare = registerCompare(context);
  const historyPage = registerHistoryPage(context, history.runs, async (dirs) => compare.open(dirs));
  const matrices = registerMatrices(context, runs.manager);
  const previews = registerPreview(context, runs.log);
  return {
    ...history,
    ...runs,
    attention,
    compare,
    historyPage,
    matrices,
    previews,
    activation: { loadMs: EVALUATED_AT - LOADED_AT, activateMs: performance.now() - started },
  };
}

export function deactivate(): void {
  // Everything registered is in context.subscriptions and disposed by VS Code.
}
