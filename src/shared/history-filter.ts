// Value filters of the history table: `asr < 10`, `acc >= 80 and kind = defend`, `beta.2 > 500`,
// `not (trigger ~ grid) or seed != 0`, `tfjs = 4.22.0`, `data_sha256 = 9350d8ad5e08`. A small tokenizer and
// recursive-descent parser (no eval); a bad expression gives a message and the place it went wrong.
// Pure (test/unit/history-filter.test.ts, test/unit/history-provenance.test.ts). Documented in docs/history.md.
//
//   expr  := and ('or' and)*          and := unary ('and' unary)*
//   unary := 'not' unary | '(' expr ')' | name op value
//   op    := < <= > >= = == != ~ ^=   (~: contains, ^=: starts with; both case-insensitive)
//   value := number (an optional %) | 'text' | "text" | word (may start with a digit: 4.22.0, 9350d8ad5e08)
// On a SHA-256 column, = and != also take the hash's first 7 or more hex digits, as the cell shows them.
import { cellValue, NATURAL_ORDER, type ColumnDef } from './history-columns';
import { hashMatches, isHashColumn } from './history-provenance';
import type { CellValue, HistoryRow } from './history-protocol';

type Op = '<' | '<=' | '>' | '>=' | '=' | '!=' | '~' | '^=';

type Node =
  | { readonly type: 'cmp'; readonly column: string; readonly op: Op; readonly value: number | string; readonly raw: string }
  | { readonly type: 'and' | 'or'; readonly left: Node; readonly right: Node }
  | { readonly type: 'not'; readonly inner: Node };

interface Token {
  readonly kind: 'word' | 'number' | 'string' | 'op' | '(' | ')' | 'end';
  readonly text: string;
  readonly at: number;
}

export type RowTest = (row: HistoryRow) => boolean;

export type ParsedFilter =
  | { readonly ok: true; readonly test: RowTest; readonly columns: readonly string[] }
  | { readonly ok: false; readonly error: string; readonly at: number };

class FilterError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

const TOKEN =
  /\s*(?:(<=|>=|==|!=|\^=|&&|\|\||[<>=~!()])|(-?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?%?)(?![\w.])|'([^']*)'|"([^"]*)"|([A-Za-z_][\w.\-/]*|\d[\w.\-/]*))/y;

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(text);
    if (!m) {
      const at = pos + (text.slice(pos).length - text.slice(pos).trimStart().length);
      throw new FilterError(`unexpected “${text[at]}”`, at);
    }
    const at = m.index + m[0].length - m[0].trimStart().length;
    if (m[1] !== undefined) {
      const t = m[1] === '&&' ? 'and' : m[1] === '||' ? 'or' : m[1] === '!' ? 'not' : m[1];
      out.push(
        t === '(' || t === ')' ? { kind: t, text: t, at } : { kind: t === 'and' || t === 'or' || t === 'not' ? 'word' : 'op', text: t, at },
      );
    } else if (m[2] !== undefined) out.push({ kind: 'number', text: m[2], at });
    else if (m[3] !== undefined || m[4] !== undefined) out.push({ kind: 'string', text: m[3] ?? m[4] ?? '', at });
    else out.push({ kind: 'word', text: m[5], at });
    pos = TOKEN.lastIndex;
  }
  out.push({ kind: 'end', text: '', at: text.length });
  return out;
}

const segmentsMatch = (want: readonly string[], have: readonly string[]): boolean =>
  want.length <= have.length &&
  want.every((w, i) => {
    const h = have[have.length - want.length + i];
    return h === w || h === `${w}s`;
  });

/**
 * The column a name means: a column id or title (`asr`, `ACC`, `params.seed`), a parameter or metric key
 * (`cleanCount`, `erased.asr`), or the end of one on dot boundaries (`betas.2` → `training.betas.2`;
 * a plural may drop its s: `beta.2`). When several keys end that way the shortest wins
 * (`training.betas.2` before `teacherTraining.betas.2`); a tie is an error.
 */
export function resolveColumn(name: string, columns: readonly ColumnDef[]): { id: string } | { error: string } {
  const lower = name.toLowerCase();
  const bare = (c: ColumnDef): string => c.id.replace(/^(params|metrics|provenance)\./, '');
  const exact = columns.filter((c) => c.id.toLowerCase() === lower || c.title.toLowerCase() === lower || bare(c).toLowerCase() === lower);
  if (exact.length >= 1) return { id: exact[0].id };
  const want = lower.split('.');
  const ends = columns.filter((c) => segmentsMatch(want, bare(c).toLowerCase().split('.')));
  if (ends.length === 0) return { error: `no column “${name}”` };
  const shortest = Math.min(...ends.map((c) => c.id.length));
  const best = ends.filter((c) => c.id.length === shortest);
  if (best.length > 1) return { error: `“${name}” could be ${best.map(bare).join(' or ')}: write the whole name` };
  return { id: best[0].id };
}

class Parser {
  private i = 0;
  readonly used = new Set<string>();
  constructor(
    private readonly tokens: readonly Token[],
    private readonly columns: readonly ColumnDef[],
  ) {}

  private peek(): Token {
    return this.tokens[this.i];
  }
  private next(): Token {
    return this.tokens[this.i++];
  }
  private keyword(word: string): boolean {
    const t = this.peek();
    if (t.kind === 'word' && t.text.toLowerCase() === word) {
      this.i++;
      return true;
    }
    return false;
  }

  parse(): Node {
    const node = this.or();
    const t = this.peek();
    if (t.kind !== 'end') throw new FilterError(`expected “and”, “or” or the end, found “${t.text}”`, t.at);
    return node;
  }
  private or(): Node {
    let left = this.and();
    while (this.keyword('or')) left = { type: 'or', left, right: this.and() };
    return left;
  }
  private and(): Node {
    let left = this.unary();
    while (this.keyword('and')) left = { type: 'and', left, right: this.unary() };
    return left;
  }
  private unary(): Node {
    if (this.keyword('not')) return { type: 'not', inner: this.unary() };
    const t = this.next();
    if (t.kind === '(') {
      const inner = this.or();
      const close = this.next();
      if (close.kind !== ')') throw new FilterError('missing “)”', close.at);
      return inner;
    }
    if (t.kind !== 'word' || ['and', 'or'].includes(t.text.toLowerCase()))
      throw new FilterError(t.kind === 'end' ? 'expected a column name' : `expected a column name, found “${t.text}”`, t.at);
    const col = resolveColumn(t.text, this.columns);
    if ('error' in col) throw new FilterError(col.error, t.at);
    this.used.add(col.id);
    const op = this.next();
    if (op.kind !== 'op')
      throw new FilterError(
        `expected a comparison (< <= > >= = != ~ ^=) after “${t.text}”${op.kind === 'end' ? '' : `, found “${op.text}”`}`,
        op.at,
      );
    const v = this.next();
    if (v.kind !== 'number' && v.kind !== 'string' && v.kind !== 'word') throw new FilterError(`expected a value after “${op.text}”`, v.at);
    const value = v.kind === 'number' ? Number(v.text.replace(/%$/, '')) : v.text;
    return { type: 'cmp', column: col.id, op: (op.text === '==' ? '=' : op.text) as Op, value, raw: v.text };
  }
}

function asNumber(v: CellValue): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  const n = v.trim() === '' ? NaN : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function compare(v: CellValue | undefined, op: Op, want: number | string): boolean {
  if (v === undefined) return op === '!=';
  if (op === '~') return String(v).toLowerCase().includes(String(want).toLowerCase());
  if (op === '^=') return String(v).toLowerCase().startsWith(String(want).toLowerCase());
  let c: number;
  if (typeof want === 'number') {
    const n = asNumber(v);
    if (n === undefined) return op === '!=';
    c = n - want;
  } else {
    const n = asNumber(v);
    const w = Number(want);
    c =
      n !== undefined && want.trim() !== '' && Number.isFinite(w)
        ? n - w
        : NATURAL_ORDER.compare(String(v).toLowerCase(), want.toLowerCase());
  }
  switch (op) {
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    case '>=':
      return c >= 0;
    case '=':
      return c === 0;
    case '!=':
      return c !== 0;
  }
}

function evaluate(node: Node, row: HistoryRow): boolean {
  switch (node.type) {
    case 'cmp': {
      const v = cellValue(row, node.column);
      if (!isHashColumn(node.column)) return compare(v, node.op, node.op === '^=' ? node.raw : node.value);
      // A hash is text even when its digits read as a number (9350e8 would be 9.35e11); = takes an abbreviation.
      if (v !== undefined && (node.op === '=' || node.op === '!=')) return hashMatches(String(v), node.raw) === (node.op === '=');
      return compare(v, node.op, node.raw);
    }
    case 'and':
      return evaluate(node.left, row) && evaluate(node.right, row);
    case 'or':
      return evaluate(node.left, row) || evaluate(node.right, row);
    case 'not':
      return !evaluate(node.inner, row);
  }
}

/** Parses `text` against the table's columns; an empty text keeps every row. A run without the column fails a comparison (except !=). */
export function parseFilter(text: string, columns: readonly ColumnDef[]): ParsedFilter {
  if (!text.trim()) return { ok: true, test: () => true, columns: [] };
  try {
    const parser = new Parser(tokenize(text), columns);
    const node = parser.parse();
    return { ok: true, test: (row) => evaluate(node, row), columns: [...parser.used] };
  } catch (e) {
    if (e instanceof FilterError) return { ok: false, error: e.message, at: e.at };
    throw e;
  }
}
