// The only Python globals a checkpoint may name, each re-implemented as inert data construction.
// Anything else (os.system, a pickled nn.Module, ...) is refused before any of it could matter.
import { InputError } from '../types';
import type { StorageDType } from './dtypes';
import { PyGlobal, PyObject, StorageRef, TensorRef, type PickleValue } from './values';

const STORAGE_CLASSES: Readonly<Record<string, StorageDType>> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  // torch >= 1.13 untyped storages count bytes; a tensor over one names its dtype (_rebuild_tensor_v3).
  UntypedStorage: 'uint8',
};

const TORCH_DTYPES: Readonly<Record<string, StorageDType>> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  uint16: 'uint16',
  uint32: 'uint32',
  uint64: 'uint64',
  bool: 'bool',
};

/** numpy dtype codes whose scalars we decode (checkpoints often hold e.g. best_acc as numpy.float64): [bytes, reader]. */
const NUMPY_SCALARS: Readonly<Record<string, readonly [number, (v: DataView) => number | boolean]>> = {
  f8: [8, (v) => v.getFloat64(0, true)],
  f4: [4, (v) => v.getFloat32(0, true)],
  i8: [8, (v) => Number(v.getBigInt64(0, true))],
  i4: [4, (v) => v.getInt32(0, true)],
  u1: [1, (v) => v.getUint8(0)],
  b1: [1, (v) => v.getUint8(0) !== 0],
};

function isInt(v: PickleValue | undefined): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function intList(v: PickleValue | undefined): number[] | undefined {
  return Array.isArray(v) && v.every((x) => isInt(x) && x >= 0) ? (v as number[]) : undefined;
}

function rebuildTensor(args: PickleValue[], dtypeArg: PickleValue | undefined, file: string): TensorRef {
  const [storage, offset, shape, stride] = args;
  const size = intList(shape);
  const strides = intList(stride);
  if (!(storage instanceof StorageRef) || !isInt(offset) || offset < 0 || !size || !strides || size.length !== strides.length) {
    throw new InputError('a tensor in the checkpoint is malformed (bad storage, offset, shape or stride)', file);
  }
  let dtype = storage.dtype;
  if (dtypeArg !== undefined) {
    if (!(dtypeArg instanceof PyGlobal) || !dtypeArg.dtype)
      throw new InputError('a tensor in the checkpoint has an unsupported dtype', file);
    dtype = dtypeArg.dtype;
  }
  return new TensorRef(storage, offset, size, strides, dtype);
}

function bytesOf(text: string, encoding: PickleValue | undefined): Uint8Array {
  if (encoding === 'latin1' || encoding === 'latin-1') return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  return new TextEncoder().encode(text);
}

function numpyScalar(args: PickleValue[]): PickleValue {
  const [dtype, raw] = args;
  if (!(dtype instanceof PyObject) || !(raw instanceof Uint8Array)) return null;
  const code = dtype.args[0];
  const order = Array.isArray(dtype.state) ? dtype.state[1] : '<';
  const scalar = typeof code === 'string' && Object.hasOwn(NUMPY_SCALARS, code) ? NUMPY_SCALARS[code] : undefined;
  if (!scalar || order === '>' || raw.byteLength < scalar[0]) return null;
  return scalar[1](new DataView(raw.buffer, raw.byteOffset, raw.byteLength));
}

/** Python's callables and classes we stand in for, by qualified name. */
function allowed(qualified: string, file: string): PyGlobal | undefined {
  const g = (call?: (args: PickleValue[]) => PickleValue) => new PyGlobal(qualified, call);
  switch (qualified) {
    case 'collections.OrderedDict':
      return g(([items]) => {
        const map = new Map<PickleValue, PickleValue>();
        if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair) && pair.length === 2) map.set(pair[0], pair[1]);
        return map;
      });
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return g((args) => rebuildTensor(args.slice(0, 4), undefined, file));
    case 'torch._utils._rebuild_tensor_v3':
      return g((args) => rebuildTensor(args.slice(0, 4), args[6], file));
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return g(([data]) => data ?? null);
    case 'torch._tensor._rebuild_from_type_v2':
      // (func, new_type, args, state): func is itself allow-listed; the subclass type is dropped.
      return g(([func, _type, args]) => {
        if (!(func instanceof PyGlobal) || !func.call || !Array.isArray(args))
          throw new InputError('a tensor in the checkpoint is malformed', file);
        return func.call(args);
      });
    case 'torch.Tensor':
    case 'torch.nn.parameter.Parameter':
      return g();
    case 'torch.Size':
      return g(([dims]) => (Array.isArray(dims) ? [...dims] : []));
    case 'torch.device':
      return g((args) => args.map(String).join(':'));
    case 'builtins.set':
    case 'builtins.frozenset':
    case '__builtin__.set':
    case '__builtin__.frozenset':
      return g(([items]) => new Set(Array.isArray(items) ? items : []));
    case 'builtins.bytearray':
    case '__builtin__.bytearray':
      return g(([v, enc]) => (v instanceof Uint8Array ? v.slice() : typeof v === 'string' ? bytesOf(v, enc) : new Uint8Array(0)));
    case '_codecs.encode':
      // Protocol 2 pickles Python 3 bytes as _codecs.encode(text, 'latin1').
      return g(([text, enc]) => bytesOf(typeof text === 'string' ? text : '', enc));
    case 'argparse.Namespace':
    case 'numpy.dtype':
      return g((args) => new PyObject(qualified, args));
    case 'numpy.core.multiarray.scalar':
    case 'numpy._core.multiarray.scalar':
      return g(numpyScalar);
    default:
      return undefined;
  }
}

const MODEL_HINT = new TextEncoder().encode('torch.nn.modules');

function contains(data: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(needle) >= 0;
}

/** Resolves GLOBAL / STACK_GLOBAL against the allow-list, or refuses with a message saying what was found. */
export function resolveGlobal(module: string, name: string, file: string, data: Uint8Array): PyGlobal {
  const qualified = `${module}.${name}`;
  if (module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') {
    if (Object.hasOwn(STORAGE_CLASSES, name)) return new PyGlobal(qualified, undefined, STORAGE_CLASSES[name]);
  }
  if (module === 'torch' && Object.hasOwn(TORCH_DTYPES, name)) return new PyGlobal(qualified, undefined, undefined, TORCH_DTYPES[name]);
  if (module === 'torch' && /^(u?int\d+|float\d.*|bfloat\d.*|complex\d+|c?half|cfloat|cdouble|qu?int\w+|bits\w+)$/.test(name)) {
    throw new InputError(
      `checkpoint has a tensor of dtype torch.${name}, which this reader does not convert (it reads ${Object.keys(TORCH_DTYPES).join(', ')})`,
      file,
    );
  }
  const known = allowed(qualified, file);
  if (known) return known;
  // A pickled nn.Module names its own class first (e.g. __main__.Net), then torch.nn.modules.* layers.
  if (qualified.startsWith('torch.nn.') || contains(data, MODEL_HINT)) {
    throw new InputError(
      `checkpoint contains the Python object ${qualified} (a whole pickled model); only state_dicts can be loaded: ` +
        'in PyTorch, save model.state_dict() instead of model',
      file,
    );
  }
  throw new InputError(
    `checkpoint refers to the Python global ${qualified}, which a state_dict never contains (Python's torch.load ` +
      'would call it while loading: the file may be malicious). Nothing in it was run; only tensors, dicts, lists, ' +
      'numbers and strings are accepted',
    file,
  );
}

/** Maps torch's persistent IDs ('storage', StorageClass, key, location, numel[, view]) to storage references. */
export function persistentLoad(pid: PickleValue, file: string): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage') throw new InputError(`checkpoint has an unknown persistent id (${describe(pid)})`, file);
  const [, cls, key, location, numel, view] = pid;
  if (!(cls instanceof PyGlobal) || !cls.storageDType) throw new InputError('checkpoint has a storage of an unknown type', file);
  if ((typeof key !== 'string' && !isInt(key)) || !isInt(numel)) throw new InputError('checkpoint has a malformed storage reference', file);
  let viewOf: StorageRef['view'];
  if (Array.isArray(view) && view.length === 3 && isInt(view[1]) && isInt(view[2])) viewOf = { offset: view[1], numel: view[2] };
  return new StorageRef(String(key), cls.storageDType, numel, typeof location === 'string' ? location : 'cpu', viewOf);
}

function describe(v: PickleValue): string {
  return Array.isArray(v) ? `tuple of ${v.length}` : typeof v;
}
