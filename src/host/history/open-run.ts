// Opening a run from the history pages: its run panel when the run commands are registered (they are
// in the extension; a test may load a page alone), else its folder in the Explorer.
import * as vscode from 'vscode';

/** The run commands (src/host/runs/commands.ts) open and reveal runs; used when registered. */
const OPEN_RUN_COMMAND = 'nad.openRun';
const REVEAL_RUN_COMMAND = 'nad.revealRunFolder';

async function hasCommand(id: string): Promise<boolean> {
  return (await vscode.commands.getCommands(true)).includes(id);
}

/** Open a run in its run panel (the run commands' `nad.openRun`), else show its folder in the Explorer. */
export async function openRun(dir: string): Promise<void> {
  if (await hasCommand(OPEN_RUN_COMMAND)) await vscode.commands.executeCommand(OPEN_RUN_COMMAND, dir);
  else await revealRun(dir);
}

export async function revealRun(dir: string): Promise<void> {
  if (await hasCommand(REVEAL_RUN_COMMAND)) await vscode.commands.executeCommand(REVEAL_RUN_COMMAND, dir);
  else await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(dir));
}

/** Whether runs open in their panels (the run commands are registered). */
export function canOpenRuns(): Promise<boolean> {
  return hasCommand(OPEN_RUN_COMMAND);
}
