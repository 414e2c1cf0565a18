// What the run-time schemas (message-schemas.ts, event-schemas.ts) share: the pieces they are built from,
// the check that ties a schema to its TypeScript type, one way to parse, and one way to say why a value
// failed ("epochs is missing; acc: expected number, got "high"": the first three issues, with their fields),
// with a short preview of the refused value itself.
import * as v from 'valibot';

/** A whole number >= 0. */
export const count = v.pipe(v.number(), v.integer(), v.minValue(0));

/** A read-only list of at most `max` items. */
export const listOf = <S extends v.GenericSchema>(item: S, max: number) => v.pipe(v.array(item), v.maxLength(max), v.readonly());

/** true when A and B accept the same values (each assignable to the other); `readonly` on properties aside. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * `sameAs<typeof schema, T>(true)` compiles only while the schema's output and the protocol type T agree both
 * ways: a message type the schema would refuse, or a schema accepting what T does not allow, fails the build.
 */
export const sameAs = <S extends v.GenericSchema, T>(ok: Same<v.InferOutput<S>, T>): boolean => ok;

/** `raw` checked against `schema`: the typed value, or why not. Never throws. */
export function parseWith<T>(schema: v.GenericSchema<unknown, T>, raw: unknown): { readonly value: T } | { readonly reason: string } {
  const r = v.safeParse(schema, raw);
  return r.success ? { value: r.output } : { reason: describeIssues(r.issues) };
}

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
