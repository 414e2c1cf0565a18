// Activation only: wires the host modules (everything that talks to VS Code lives in src/host/).
import type { ExtensionContext } from 'vscode';
import { registerHistory, type NadExtensionApi } from './host/history';

export function activate(context: ExtensionContext): NadExtensionApi {
  return registerHistory(context);
}

export function deactivate(): void {
  // Everything registered is in context.subscriptions and disposed by VS Code.
}
