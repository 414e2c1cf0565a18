// What made each run, as history table cells: config.json's `provenance` (src/runs/provenance.ts) reduced
// to the extension version, engine, kernel build, Node, tfjs and the SHA-256 of the data set and of the
// checkpoint the run started from. A run made before provenance was recorded (or with a field missing)
// shows "unknown", never nothing. Pure (test/unit/history-provenance.test.ts).
import { UNKNOWN } from './provenance';

/** The provenance columns, in order: `key` is the column id after `provenance.` and the name filters use. */
export const PROVENANCE_FIELDS = [
  { key: 'version', title: 'Extension' },
  { key: 'backend', title: 'Engine' },
  { key: 'kernels', title: 'Kernels' },
  { key: 'node', title: 'Node' },
  { key: 'tfjs', title: 'tfjs' },
  { key: 'data_sha256', title: 'Data SHA-256' },
  { key: 'checkpoint_sha256', title: 'Checkpoint SHA-256' },
] as const;

export type ProvenanceKey = (typeof PROVENANCE_FIELDS)[number]['key'];

/** A run's provenance cells; a key without a value means the run read no such file (a training run has no checkpoint). */
export interface ProvenanceCells {
  readonly values: Partial<Record<ProvenanceKey, string>>;
  /** Tooltips: the full hash with the file's role and path. */
  readonly notes: Partial<Record<ProvenanceKey, string>>;
}

/** Input roles in order of preference: an evaluation reads only a test set, a defense its suspect model or student. */
const DATA_ROLES = ['data', 'test'];
const CHECKPOINT_ROLES = ['model', 'student', 'model 1'];

const SHA256 = /^[0-9a-f]{64}$/i;

/** A column holding a SHA-256 (shortened in its cell; `=` accepts an abbreviated hash). */
export function isHashColumn(id: string): boolean {
  return id.startsWith('provenance.') && id.endsWith('_sha256');
}

/** The first 12 hex digits of a SHA-256 (enough to tell files apart at a glance); other text unchanged. */
export function shortHash(value: string): string {
  return SHA256.test(value) ? value.slice(0, 12) : value;
}

/**
 * Whether a stored hash matches what the user wrote: the whole hash, or its first 7 or more hex digits (as git
 * abbreviates commits), case-insensitive. Text that is not a hash ("embedded", "missing") must match whole.
 */
export function hashMatches(stored: string, wanted: string): boolean {
  const w = wanted.trim().toLowerCase();
  const s = stored.toLowerCase();
  return SHA256.test(s) && /^[0-9a-f]{7,64}$/.test(w) ? s.startsWith(w) : s === w;
}

function text(v: unknown): string {
  return typeof v === 'string' && v.trim() ? v : UNKNOWN;
}

interface InputLike {
  readonly role?: unknown;
  readonly path?: unknown;
  readonly sha256?: unknown;
}

/** The hash of the first input with one of `roles`; "unknown" when the run did not record its inputs. */
function inputHash(inputs: unknown, roles: readonly string[]): { value?: string; note?: string } {
  if (!Array.isArray(inputs)) return { value: UNKNOWN };
  const list = inputs.filter((i): i is InputLike => typeof i === 'object' && i !== null);
  for (const role of roles) {
    const found = list.find((i) => i.role === role);
    if (found) {
      const value = text(found.sha256);
      return { value, note: `${role}: ${text(found.path)}\nSHA-256 ${value}` };
    }
  }
  return {};
}

/** The cells of config.json's `provenance` value (any shape: hand-edited and older runs are read too). */
export function provenanceCells(provenance: unknown): ProvenanceCells {
  const p = (typeof provenance === 'object' && provenance !== null && !Array.isArray(provenance) ? provenance : {}) as Record<
    string,
    unknown
  >;
  const values: Partial<Record<ProvenanceKey, string>> = {};
  const notes: Partial<Record<ProvenanceKey, string>> = {};
  for (const key of ['version', 'backend', 'kernels', 'node', 'tfjs'] as const) values[key] = text(p[key]);
  for (const [key, roles] of [
    ['data_sha256', DATA_ROLES],
    ['checkpoint_sha256', CHECKPOINT_ROLES],
  ] as const) {
    const h = inputHash(p['inputs'], roles);
    if (h.value !== undefined) values[key] = h.value;
    if (h.note !== undefined) notes[key] = h.note;
  }
  return { values, notes };
}
