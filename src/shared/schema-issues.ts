// One way to say why a value failed its schema (valibot issues), for logs and problem lists:
// "epochs is missing; acc: expected number, got "high"" - the first three issues, with their fields;
// and a short preview of the refused value itself.
import * as v from 'valibot';

export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues
    .slice(0, 3)
    .map((i) => {
      const path = v.getDotPath(i);
      if (path && i.received === 'undefined') return `${path} is missing`;
      const why = i.expected && i.type !== 'custom' ? `expected ${i.expected}, got ${i.received}` : i.message;
      return path ? `${path}: ${why}` : why;
    })
    .join('; ');
}

/** A short, safe preview of a refused message for the log (never the whole thing). */
export function messagePreview(raw: unknown, max = 200): string {
  let s: string;
  try {
    s = JSON.stringify(raw) ?? String(raw);
  } catch {
    s = Object.prototype.toString.call(raw);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
