// A Python unpickler for what torch.save writes (protocols 0-5). It builds inert data only: every
// global goes through the allow-list in allowlist.ts, and REDUCE/NEWOBJ/BUILD can only reach our own
// stand-ins for those globals, so a malicious file cannot make anything run.
import { InputError } from '../types';
import { persistentLoad, resolveGlobal } from './allowlist';
import { decodeLong, exact, unescape } from './pickle-literals';
import { OP } from './pickle-opcodes';
import { PyGlobal, PyObject, type PickleValue } from './values';

export interface UnpickleResult {
  readonly value: PickleValue;
  /** Byte offset just past the STOP opcode (legacy torch files hold several pickles back to back). */
  readonly end: number;
}

/** Decodes the pickle that starts at `start`. Errors are InputErrors naming `file`. */
export function unpickle(data: Uint8Array, file: string, start = 0): UnpickleResult {
  try {
    return new Unpickler(data, file, start).run();
  } catch (err) {
    if (err instanceof InputError) throw err;
    // e.g. a bad number literal or code point in a damaged file
    throw new InputError(`not a valid checkpoint: its pickled data is malformed (${(err as Error).message})`, file);
  }
}

const utf8 = new TextDecoder('utf-8');

class Unpickler {
  private pos: number;
  private stack: PickleValue[] = [];
  private readonly marks: PickleValue[][] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly file: string,
    start: number,
  ) {
    this.pos = start;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private fail(message: string): never {
    throw new InputError(message, this.file);
  }

  private malformed(what: string): never {
    this.fail(`not a valid checkpoint: its pickled data is malformed (${what} at byte ${this.pos})`);
  }

  private take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.data.length) {
      this.fail('the file ends in the middle of its pickled data (truncated, e.g. an incomplete download or copy?)');
    }
    const bytes = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return bytes;
  }

  /** Consumes n bytes and returns where they start (for DataView reads). */
  private at(n: number): number {
    const start = this.pos;
    this.take(n);
    return start;
  }
  private u8(): number {
    return this.data[this.at(1)];
  }
  private u16(): number {
    return this.view.getUint16(this.at(2), true);
  }
  private u32(): number {
    return this.view.getUint32(this.at(4), true);
  }
  private i32(): number {
    return this.view.getInt32(this.at(4), true);
  }
  private u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi * 4294967296 + lo; // lengths past 2^53 fail in take() anyway
  }

  /** A newline-terminated text argument (protocol 0 opcodes and GLOBAL). */
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.take(this.data.length - this.pos + 1);
    const bytes = this.take(end - this.pos + 1);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length - 1).toString('latin1');
  }

  private str(n: number): string {
    return utf8.decode(this.take(n));
  }

  private push(v: PickleValue): void {
    this.stack.push(v);
  }

  private pop(): PickleValue {
    if (this.stack.length === 0) this.malformed('stack underflow');
    return this.stack.pop() as PickleValue;
  }

  private top(): PickleValue {
    if (this.stack.length === 0) this.malformed('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PickleValue[] {
    const items = this.stack;
    const previous = this.marks.pop();
    if (!previous) this.malformed('missing MARK');
    this.stack = previous;
    return items;
  }

  private memoGet(key: number): PickleValue {
    if (!this.memo.has(key)) this.malformed(`memo key ${key} unset`);
    return this.memo.get(key) as PickleValue;
  }

  private global(module: string, name: string): PyGlobal {
    return resolveGlobal(module, name, this.file, this.data);
  }

  /** Calls one of our stand-ins; anything else on the stack cannot be called. */
  private call(callable: PickleValue, args: PickleValue): PickleValue {
    if (!(callable instanceof PyGlobal) || !callable.call)
      this.malformed(`call of a non-callable ${callable instanceof PyGlobal ? callable.name : typeof callable}`);
    if (!Array.isArray(args)) this.malformed('call arguments are not a tuple');
    return callable.call(args);
  }

  private dict(items: PickleValue[]): Map<PickleValue, PickleValue> {
    const map = new Map<PickleValue, PickleValue>();
    this.setItems(map, items);
    return map;
  }

  private setItems(target: PickleValue, items: PickleValue[]): void {
    if (!(target instanceof Map)) this.malformed('SETITEM on a non-dict');
    if (items.length % 2) this.malformed('odd number of dict items');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  run(): UnpickleResult {
    for (;;) {
      const op = this.u8();
      switch (op) {
        case OP.PROTO: {
          const version = this.u8();
          if (version > 5) this.fail(`uses pickle protocol ${version}, newer than the 0-5 this reader knows`);
          break;
        }
        case OP.FRAME:
          this.u64(); // frames are only a read-ahead hint
          break;
        case OP.STOP:
          return { value: this.pop(), end: this.pos };
        case OP.MARK:
          this.marks.push(this.stack);
          this.stack = [];
          break;
        case OP.POP:
          if (this.stack.length) this.stack.pop();
          else this.popMark();
          break;
        case OP.POP_MARK:
          this.popMark();
          break;
        case OP.DUP:
          this.push(this.top());
          break;
        case OP.NONE:
          this.push(null);
          break;
        case OP.NEWTRUE:
          this.push(true);
          break;
        case OP.NEWFALSE:
          this.push(false);
          break;
        case OP.INT: {
          const s = this.line();
          this.push(s === '01' ? true : s === '00' ? false : exact(BigInt(s)));
          break;
        }
        case OP.LONG:
          this.push(exact(BigInt(this.line().replace(/L$/, ''))));
          break;
        case OP.BININT:
          this.push(this.i32());
          break;
        case OP.BININT1:
          this.push(this.u8());
          break;
        case OP.BININT2:
          this.push(this.u16());
          break;
        case OP.LONG1:
          this.push(decodeLong(this.take(this.u8())));
          break;
        case OP.LONG4:
          this.push(decodeLong(this.take(this.i32())));
          break;
        case OP.FLOAT:
          this.push(parseFloat(this.line()));
          break;
        case OP.BINFLOAT:
          this.push(this.view.getFloat64(this.at(8), false)); // big-endian, unlike the rest
          break;
        case OP.STRING:
          this.push(unescape(this.line().slice(1, -1)));
          break;
        case OP.UNICODE:
          this.push(unescape(this.line()));
          break;
        case OP.BINSTRING:
          this.push(this.str(this.i32()));
          break;
        case OP.SHORT_BINSTRING:
        case OP.SHORT_BINUNICODE:
          this.push(this.str(this.u8()));
          break;
        case OP.BINUNICODE:
          this.push(this.str(this.u32()));
          break;
        case OP.BINUNICODE8:
          this.push(this.str(this.u64()));
          break;
        case OP.SHORT_BINBYTES:
          this.push(this.take(this.u8()).slice());
          break;
        case OP.BINBYTES:
          this.push(this.take(this.u32()).slice());
          break;
        case OP.BINBYTES8:
        case OP.BYTEARRAY8:
          this.push(this.take(this.u64()).slice());
          break;
        case OP.EMPTY_TUPLE:
        case OP.EMPTY_LIST:
          this.push([]);
          break;
        case OP.TUPLE1:
        case OP.TUPLE2:
        case OP.TUPLE3: {
          const n = op - OP.TUPLE1 + 1;
          if (this.stack.length < n) this.malformed('stack underflow');
          this.push(this.stack.splice(-n));
          break;
        }
        case OP.TUPLE:
        case OP.LIST:
          this.push(this.popMark());
          break;
        case OP.EMPTY_DICT:
          this.push(new Map());
          break;
        case OP.DICT:
          this.push(this.dict(this.popMark()));
          break;
        case OP.EMPTY_SET:
          this.push(new Set());
          break;
        case OP.FROZENSET:
          this.push(new Set(this.popMark()));
          break;
        case OP.APPEND: {
          const v = this.pop();
          const list = this.top();
          if (!Array.isArray(list)) this.malformed('APPEND to a non-list');
          list.push(v);
          break;
        }
        case OP.APPENDS: {
          const items = this.popMark();
          const list = this.top();
          if (!Array.isArray(list)) this.malformed('APPENDS to a non-list');
          for (const v of items) list.push(v);
          break;
        }
        case OP.ADDITEMS: {
          const items = this.popMark();
          const set = this.top();
          if (!(set instanceof Set)) this.malformed('ADDITEMS to a non-set');
          for (const v of items) set.add(v);
          break;
        }
        case OP.SETITEM: {
          const v = this.pop();
          const k = this.pop();
          this.setItems(this.top(), [k, v]);
          break;
        }
        case OP.SETITEMS: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case OP.PUT:
          this.memo.set(Number(this.line()), this.top());
          break;
        case OP.BINPUT:
          this.memo.set(this.u8(), this.top());
          break;
        case OP.LONG_BINPUT:
          this.memo.set(this.u32(), this.top());
          break;
        case OP.MEMOIZE:
          this.memo.set(this.memo.size, this.top());
          break;
        case OP.GET:
          this.push(this.memoGet(Number(this.line())));
          break;
        case OP.BINGET:
          this.push(this.memoGet(this.u8()));
          break;
        case OP.LONG_BINGET:
          this.push(this.memoGet(this.u32()));
          break;
        case OP.GLOBAL: {
          const module = this.line();
          this.push(this.global(module, this.line()));
          break;
        }
        case OP.STACK_GLOBAL: {
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.malformed('STACK_GLOBAL without strings');
          this.push(this.global(module, name));
          break;
        }
        case OP.REDUCE:
        case OP.NEWOBJ: {
          const args = this.pop();
          this.push(this.call(this.pop(), args));
          break;
        }
        case OP.NEWOBJ_EX: {
          this.pop(); // keyword arguments: none of our stand-ins takes any
          const args = this.pop();
          this.push(this.call(this.pop(), args));
          break;
        }
        case OP.INST: {
          const module = this.line();
          const cls = this.global(module, this.line());
          this.push(this.call(cls, this.popMark()));
          break;
        }
        case OP.OBJ: {
          const [cls, ...args] = this.popMark();
          this.push(this.call(cls ?? null, args));
          break;
        }
        case OP.BUILD: {
          // Python would call __setstate__; our data objects just keep the state. Dicts (OrderedDict's
          // _metadata) and tensors ignore it.
          const state = this.pop();
          const obj = this.top();
          if (obj instanceof PyObject) obj.state = state;
          break;
        }
        case OP.PERSID:
          this.push(persistentLoad(this.line(), this.file));
          break;
        case OP.BINPERSID:
          this.push(persistentLoad(this.pop(), this.file));
          break;
        case OP.EXT1:
        case OP.EXT2:
        case OP.EXT4:
          this.fail('checkpoint uses the pickle extension registry (EXT opcodes), which a state_dict never needs');
          break;
        case OP.NEXT_BUFFER:
        case OP.READONLY_BUFFER:
          this.fail('checkpoint uses out-of-band pickle buffers, which torch.save never writes');
          break;
        default:
          this.pos--;
          this.malformed(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }
}
