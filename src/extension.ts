// Activation only: wires the host modules (everything that talks to VS Code lives in src/host/).
// The engine (tfjs) is never loaded here: runs happen in worker processes.
import { LOADED_AT } from './host/activation-clock';
import type { ExtensionContext } from 'vscode';
import type { NadApi } from './host/api';
import { registerRuns } from './host/commands';
import { registerHistory } from './host/history';

export function activate(context: ExtensionContext): NadApi {
  const started = performance.now();
  const history = registerHistory(context);
  const runs = registerRuns(context, () => history.runs.refresh());
  return { ...history, ...runs, activation: { loadMs: started - LOADED_AT, activateMs: performance.now() - started } };
}

export function deactivate(): void {
  // Everything registered is in context.subscriptions and disposed by VS Code.
}
