// Restricted Mode: commands that load model or data files, or run jobs on them, ask for workspace trust.
// A checkpoint is code to the tools that read it (pickle), and a config file can point anywhere.
import * as vscode from 'vscode';

/** True in a trusted workspace; else says why `what` is refused, with a way to trust the workspace. */
export function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showErrorMessage(
      `NAD: ${what} is disabled in Restricted Mode: it reads model and data files of this workspace. Trust the workspace to enable it.`,
      'Manage Workspace Trust',
    )
    .then((a) => a && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}
