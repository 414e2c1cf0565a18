// How the history and compare pages print numbers and times.
import { formatDuration } from '../../src/shared/format';

export function formatPercent(v: number | undefined): string {
  return v === undefined ? '–' : `${v.toFixed(1)}%`;
}

/** "11-25 17:56" this year, "2025-11-25" before: local time, short enough for a table column. */
export function formatStarted(iso: string, now = new Date()): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  const day = `${p(d.getMonth() + 1)}-${p(d.getDate())}`;
  return d.getFullYear() === now.getFullYear() ? `${day} ${p(d.getHours())}:${p(d.getMinutes())}` : `${d.getFullYear()}-${day}`;
}

export function formatDurationMs(ms: number | undefined): string {
  return ms === undefined ? '–' : formatDuration(ms / 1000);
}
