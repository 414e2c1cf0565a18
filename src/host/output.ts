// The extension's one output channel, "NAD" (a log channel: levels and timestamps), created on first use.
import * as vscode from 'vscode';

let channel: vscode.LogOutputChannel | undefined;

export function nadLog(): vscode.LogOutputChannel {
  channel ??= vscode.window.createOutputChannel('NAD', { log: true });
  return channel;
}
