// Property-based fuzzing of the file readers (issue 15): every reader, fed a mutated or generated file,
// returns a valid result or throws a named InputError; never another exception, a hang, or an allocation
// far past what the file's own size can justify. Seeded: FUZZ_SEED (printed) picks the cases, FUZZ_SCALE
// multiplies the number of cases (`npm test`: 1, `npm run fuzz`: 20).
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { InputError } from '../../src/engine/types';

export const FUZZ_SCALE = Math.max(1, Number(process.env.FUZZ_SCALE ?? '1') || 1);
/** The base seed: fixed in `npm test` so a failure repeats, a fresh one per `npm run fuzz` unless FUZZ_SEED is set. */
export const FUZZ_SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : FUZZ_SCALE > 1 ? Date.now() % 2 ** 31 : 15;
/** A case that takes longer than this is a hang. */
export const CASE_BUDGET_MS = 2000;

/** The kinds of fault the mutator injects into a valid seed file. */
export type FaultKind = 'bit-flip' | 'overwrite' | 'truncate' | 'insert-chunk' | 'duplicate-chunk' | 'size-field' | 'generated';

export type Mutation =
  | { kind: 'bit-flip'; at: number; bit: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert-chunk'; at: number; bytes: Uint8Array }
  | { kind: 'duplicate-chunk'; at: number; from: number; length: number }
  | { kind: 'size-field'; at: number; value: number; width: 2 | 4 | 8; littleEndian: boolean };

/** Values a damaged or hostile size field takes: zero, one, the edges of each width, negatives as unsigned. */
const HOSTILE_SIZES = [0, 1, 2, 0x7f, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 31 - 1, 2 ** 40, 2 ** 53 - 1];

/** A position in a file of `length` bytes, biased to its first and last 512 bytes, where headers and zip directories live. */
function position(length: number): fc.Arbitrary<number> {
  const last = Math.max(0, length - 1);
  return fc.oneof(
    fc.integer({ min: 0, max: Math.min(last, 511) }),
    fc.integer({ min: Math.max(0, last - 511), max: last }),
    fc.integer({ min: 0, max: last }),
  );
}

export function mutationArb(length: number): fc.Arbitrary<Mutation> {
  const at = position(length);
  return fc.oneof(
    fc.record({ kind: fc.constant('bit-flip' as const), at, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('overwrite' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({ kind: fc.constant('insert-chunk' as const), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('duplicate-chunk' as const), at, from: at, length: fc.integer({ min: 1, max: 256 }) }),
    fc.record({
      kind: fc.constant('size-field' as const),
      at,
      value: fc.oneof(fc.constantFrom(...HOSTILE_SIZES), fc.nat()),
      width: fc.constantFrom(2 as const, 4 as const, 8 as const),
      littleEndian: fc.boolean(),
    }),
  );
}

/** Applies mutations in order to a copy of `seed`. */
export function mutate(seed: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = new Uint8Array(seed);
  for (const m of mutations) {
    const at = Math.min(m.at, Math.max(0, out.length - 1));
    switch (m.kind) {
      case 'bit-flip':
        if (out.length) out[at] ^= 1 << m.bit;
        break;
      case 'overwrite':
        out.set(m.bytes.subarray(0, Math.max(0, out.length - at)), at);
        break;
      case 'truncate':
        out = out.slice(0, at);
        break;
      case 'insert-chunk': {
        const next = new Uint8Array(out.length + m.bytes.length);
        next.set(out.subarray(0, at));
        next.set(m.bytes, at);
        next.set(out.subarray(at), at + m.bytes.length);
        out = next;
        break;
      }
      case 'duplicate-chunk': {
        const chunk = out.slice(Math.min(m.from, out.length), Math.min(m.from + m.length, out.length));
        const next = new Uint8Array(out.length + chunk.length);
        next.set(out.subarray(0, at));
        next.set(chunk, at);
        next.set(out.subarray(at), at + chunk.length);
        out = next;
        break;
      }
      case 'size-field': {
        const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
        if (at + m.width > out.length) break;
        if (m.width === 2) view.setUint16(at, m.value & 0xffff, m.littleEndian);
        else if (m.width === 4) view.setUint32(at, m.value >>> 0, m.littleEndian);
        else view.setBigUint64(at, BigInt(Math.trunc(m.value)), m.littleEndian);
        break;
      }
    }
  }
  return out;
}

/** Mutations of one of the seeds: 1 to 4 faults each. */
export function mutatedFiles(seeds: readonly Uint8Array[]): fc.Arbitrary<{ bytes: Uint8Array; faults: FaultKind[] }> {
  return fc.integer({ min: 0, max: seeds.length - 1 }).chain((i) =>
    fc.array(mutationArb(seeds[i].length), { minLength: 1, maxLength: 4 }).map((ms) => ({
      bytes: mutate(seeds[i], ms),
      faults: ms.map((m) => m.kind),
    })),
  );
}

export interface ReaderStats {
  reader: string;
  cases: number;
  valid: number;
  refused: number;
  crashes: number;
  ms: number;
  faults: Partial<Record<FaultKind, number>>;
}

export const stats: ReaderStats[] = [];

/** A stable per-reader offset so that readers do not share their case streams. */
function nameHash(name: string): number {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) | 0;
  return h >>> 0;
}

export interface FuzzOptions<T, R> {
  /** Cases in `npm test`; FUZZ_SCALE multiplies it. */
  readonly runs: number;
  /** Bytes the reader may allocate beyond its input for a case (checked on process.memoryUsage().arrayBuffers). */
  readonly allocLimit: (input: T) => number;
  /** The faults the case injects, for the table. */
  readonly faults: (input: T) => readonly FaultKind[];
  /** The path the reader was given: an InputError must name it (default: any). */
  readonly file?: (input: T) => string;
  /** Readers that refuse by value (a broken-run entry) rather than by throwing: such results count as refused. */
  readonly isRefusal?: (result: R) => boolean;
}

/**
 * Runs `read` on `runs` generated cases. Each must return (then `check` the result, which may throw an
 * assertion) or throw an InputError that names the file. Another exception, a case over CASE_BUDGET_MS,
 * or arrayBuffers growing past allocLimit fails the property, with the seed and path to replay it.
 */
export function fuzzReader<T, R>(
  reader: string,
  arb: fc.Arbitrary<T>,
  read: (input: T) => R,
  opts: FuzzOptions<T, R>,
  check: (result: R, input: T) => void = () => undefined,
): ReaderStats {
  const s: ReaderStats = { reader, cases: 0, valid: 0, refused: 0, crashes: 0, ms: 0, faults: {} };
  const seed = (FUZZ_SEED + nameHash(reader)) % 2 ** 31;
  const started = performance.now();
  try {
    const details = fc.check(
      fc.property(arb, (input) => {
        s.cases++;
        for (const f of opts.faults(input)) s.faults[f] = (s.faults[f] ?? 0) + 1;
        // FUZZ_TRACE=1 keeps each case's file before it runs, to find one that kills the process (out of memory).
        const traced = (input as { bytes?: unknown }).bytes;
        if (process.env.FUZZ_TRACE && traced instanceof Uint8Array) writeFileSync(join(tmpdir(), 'nad-fuzz-last-case.bin'), traced);
        const before = process.memoryUsage().arrayBuffers;
        const t0 = performance.now();
        let result: R;
        try {
          result = read(input);
        } catch (err) {
          const elapsed = performance.now() - t0;
          if (!(err instanceof InputError)) {
            throw new Error(`not an InputError: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          }
          const file = opts.file?.(input);
          if (file !== undefined && (err.file !== file || !err.message.includes(file))) {
            throw new Error(`the InputError does not name ${file}: ${err.message}`);
          }
          if (elapsed > CASE_BUDGET_MS) throw new Error(`refusal took ${elapsed.toFixed(0)} ms`);
          // A refusal after a huge allocation is still a fault: the check must come before the allocation.
          const grown = process.memoryUsage().arrayBuffers - before;
          if (grown > opts.allocLimit(input))
            throw new Error(`allocated ${grown} bytes before refusing, over the limit of ${opts.allocLimit(input)}`);
          s.refused++;
          return;
        }
        const elapsed = performance.now() - t0;
        const grown = process.memoryUsage().arrayBuffers - before;
        if (elapsed > CASE_BUDGET_MS) throw new Error(`took ${elapsed.toFixed(0)} ms`);
        if (grown > opts.allocLimit(input)) throw new Error(`allocated ${grown} bytes, over the limit of ${opts.allocLimit(input)}`);
        check(result, input);
        if (opts.isRefusal?.(result)) s.refused++;
        else s.valid++;
      }),
      { seed, numRuns: opts.runs * FUZZ_SCALE, endOnFailure: true },
    );
    if (details.failed) {
      // Another exception, a hang, an allocation over the bound or a result that fails its check: fast-check
      // stops at the first (endOnFailure), so a reader's crash count is 0 or 1.
      s.crashes++;
      const example = details.counterexample?.[0] as { bytes?: Uint8Array } | undefined;
      let saved = '';
      if (example?.bytes instanceof Uint8Array) {
        const path = join(tmpdir(), `nad-fuzz-${reader.replace(/[^A-Za-z0-9]+/g, '-')}-${seed}.bin`);
        writeFileSync(path, example.bytes);
        saved = `; the case's file (${example.bytes.length} bytes) is saved in ${path}`;
      }
      const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
      throw new Error(`${reader}: FUZZ_SEED=${FUZZ_SEED} (reader seed ${seed}, path ${details.counterexamplePath ?? '?'})${saved}: ${why}`);
    }
  } finally {
    s.ms = performance.now() - started;
    stats.push(s);
  }
  return s;
}

/** The summary table (markdown), one row per reader and a total. */
export function summaryTable(): string {
  const rows = ['| reader | cases | valid | refused (InputError) | crashes | time |', '|---|---:|---:|---:|---:|---:|'];
  const total = { cases: 0, valid: 0, refused: 0, crashes: 0, ms: 0 };
  for (const s of stats) {
    rows.push(`| ${s.reader} | ${s.cases} | ${s.valid} | ${s.refused} | ${s.crashes} | ${(s.ms / 1000).toFixed(1)} s |`);
    total.cases += s.cases;
    total.valid += s.valid;
    total.refused += s.refused;
    total.crashes += s.crashes;
    total.ms += s.ms;
  }
  rows.push(`| **all** | ${total.cases} | ${total.valid} | ${total.refused} | ${total.crashes} | ${(total.ms / 1000).toFixed(1)} s |`);
  const faults: Partial<Record<FaultKind, number>> = {};
  for (const s of stats) for (const [k, n] of Object.entries(s.faults)) faults[k as FaultKind] = (faults[k as FaultKind] ?? 0) + n;
  const faultRow = Object.entries(faults)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `FUZZ_SEED=${FUZZ_SEED} FUZZ_SCALE=${FUZZ_SCALE}\n${rows.join('\n')}\nfaults injected: ${faultRow}`;
}
