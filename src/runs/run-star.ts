// A starred run: a small star.json in its run folder, written atomically. It lives with the run (copied,
// moved or shared along with its folder, read by any window) instead of in one window's storage, and it
// is a file of its own so that the run's one status.json writer is never raced. Removing the star
// removes the file.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './run-store';

export const STAR_FILE = 'star.json';

export function isStarred(runDir: string): boolean {
  return existsSync(join(runDir, STAR_FILE));
}

export function setStarred(runDir: string, starred: boolean, now = new Date()): void {
  const file = join(runDir, STAR_FILE);
  if (starred) writeFileAtomic(file, JSON.stringify({ starred: true, at: now.toISOString() }, null, 2) + '\n');
  else rmSync(file, { force: true });
}
