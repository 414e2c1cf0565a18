// "NAD: Check Runs": `nad doctor`'s checks of each workspace folder's runs, written to the NAD output
// channel, with the fixes (mark dead runs interrupted, remove temp files) offered as buttons. The backend
// part is left to `nad doctor` in a terminal: it starts the engine, which never loads in the extension host.
import * as vscode from 'vscode';
import {
  checkDisk,
  checkRuns,
  formatDoctorReport,
  hasProblems,
  machineFacts,
  markInterrupted,
  removeTempFiles,
  type RunsReport,
} from '../../runs/doctor';
import { runsDirFor } from '../settings';
import { removeStaleLocks } from '../../runs/run-lock';

export interface CheckRunsResult {
  readonly reports: readonly RunsReport[];
  readonly markedInterrupted: number;
  readonly tempFilesRemoved: number;
}

const ENGINE_NOTE = 'backends: run `nad doctor` in a terminal to see which start (tfjs-node, wasm SIMD, threads)';

/** What `nad.checkRuns` may be given: a fix to apply without asking (tests, keybindings). */
export interface CheckRunsArgs {
  readonly fix?: 'interrupted' | 'temp';
}

/** Checks, reports, offers the fixes in a notification (or applies `args.fix` without asking). */
export async function checkRunsCommand(log: vscode.LogOutputChannel, refreshRuns: () => void, args?: unknown): Promise<CheckRunsResult> {
  const fix = typeof args === 'object' && args !== null ? (args as CheckRunsArgs).fix : undefined;
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file');
  if (!folders.length) {
    void vscode.window.showInformationMessage('NAD: open a folder first; Check Runs looks at its runs (.nad/runs).');
    return { reports: [], markedInterrupted: 0, tempFilesRemoved: 0 };
  }
  const machine = machineFacts();
  const reports = folders.map((f) => checkRuns(runsDirFor(f)));
  let problems = false;
  for (const runs of reports) {
    const disk = checkDisk(runs.runsDir);
    problems ||= hasProblems(runs, disk);
    log.info(`Check Runs\n${formatDoctorReport({ machine, engine: [ENGINE_NOTE], disk, runs })}`);
  }
  const dead = reports.flatMap((r) => r.dead);
  const temp = reports.flatMap((r) => r.tempFiles);
  const damaged = reports.reduce((n, r) => n + r.damaged.length, 0);
  const locks = reports.flatMap((r) => r.locks.stale);
  const result = { reports, markedInterrupted: 0, tempFilesRemoved: 0 };
  if (!problems) {
    void vscode.window.showInformationMessage(`NAD: ${reports.reduce((n, r) => n + r.runs, 0)} runs checked, no problems.`);
    return result;
  }
  const markButton = `Mark ${dead.length} dead run${dead.length === 1 ? '' : 's'} interrupted`;
  const removeButton = `Remove ${temp.length} temp file${temp.length === 1 ? '' : 's'}`;
  const locksButton = `Remove ${locks.length} stale lock${locks.length === 1 ? '' : 's'}`;
  const buttons = [
    ...(dead.length ? [markButton] : []),
    ...(temp.length ? [removeButton] : []),
    ...(locks.length ? [locksButton] : []),
    'Show Report',
  ];
  const parts = [
    damaged ? `${damaged} damaged` : '',
    dead.length ? `${dead.length} dead (process gone)` : '',
    temp.length ? `${temp.length} leftover temp files` : '',
    locks.length ? `${locks.length} stale run locks (process gone)` : '',
  ].filter(Boolean);
  const message = `NAD: runs checked: ${parts.join(', ') || 'low disk space'}. See the NAD output for details.`;
  const choice =
    fix === 'interrupted' ? markButton : fix === 'temp' ? removeButton : await vscode.window.showWarningMessage(message, ...buttons);
  if (choice === markButton) {
    result.markedInterrupted = dead.filter((d) => markInterrupted(d)).length;
    log.info(`Check Runs: marked ${result.markedInterrupted} dead run(s) interrupted`);
  } else if (choice === removeButton) {
    result.tempFilesRemoved = reports.reduce((n, r) => n + removeTempFiles(r.tempFiles, r.runsDir).length, 0);
    log.info(`Check Runs: removed ${result.tempFilesRemoved} temp file(s)`);
  } else if (choice === locksButton) {
    log.info(`Check Runs: removed ${removeStaleLocks(locks).length} stale lock(s)`);
  } else if (choice === 'Show Report') log.show(true);
  if (result.markedInterrupted || result.tempFilesRemoved) refreshRuns();
  return result;
}
