// Counts of the extension-host fault suite (test/integration/ui/restart-faults.test.ts) and their row in
// the README's fault table. NAD_RESTART_FAULTS sets how many faults (3 in `npm test`).
export const RESTART_FAULTS = Number(process.env.NAD_RESTART_FAULTS ?? 3);

export interface RestartCounts {
  /** Window reloads and extension host kills while a run was under way. */
  faults: number;
  /** Runs that ended failed. */
  crashes: number;
  reloads: number;
  hostKills: number;
  /** Kills after which VS Code did not start a new extension host by itself within 10 s, so the window was reloaded. */
  reloadsAfterKill: number;
  /** Faults 0-4 s after the run's command (worker start, backend, data). */
  atStartup: number;
  /** Faults that came before the run's folder existed (nothing to lose). */
  beforeFolder: number;
  /** Run workers still alive 10 s after their extension host went. */
  orphanWorkers: number;
  /** JSON files that did not parse, metrics lines cut or broken, model files that did not load. */
  tornFiles: number;
  /** Runs without a folder although started, shown failed, or not resumable. */
  lostRuns: number;
  /** Runs shown running (by the Runs view or the folder's reader) 30 s after a fault, or finished with run.lock left. */
  stuckRuns: number;
  /** Runs shown interrupted by the reader and the Runs view after a fault. */
  interrupted: number;
  /** "NAD: Resume Run" of an interrupted run. */
  resumes: number;
  /** Resumes whose epochs did not go on from the saved one; finished runs whose epochs are not 1..E once each. */
  badResumes: number;
  finishedRuns: number;
  seconds: number;
}

/** The counts as a row of the README's fault table. */
export function restartTableRow(c: RestartCounts): string {
  return (
    `| window reload (${c.reloads}) or \`kill -9\` of the extension host (${c.hostKills}, then a reload) mid-run | ${c.faults} | ${c.crashes} | ${c.lostRuns} | ` +
    `${c.stuckRuns} | ${c.tornFiles} | ${c.interrupted} shown interrupted in the Runs view, ${c.resumes - c.badResumes} of ${c.resumes} ` +
    `resumed from their last saved epoch; ${c.finishedRuns} runs finished with epochs 1..E; ${c.orphanWorkers} workers outlived ` +
    `their host; ${c.atStartup} at start-up, ${c.beforeFolder} before the folder existed; ${c.seconds} s |`
  );
}
