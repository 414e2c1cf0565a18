// The values our unpickler builds. Python objects become inert data; nothing here can run code.
import type { StorageDType } from './dtypes';

/**
 * A decoded pickle value. Python lists and tuples are arrays, dicts are Maps (insertion order kept),
 * ints beyond 2^53 are bigints, bytes are Uint8Arrays.
 */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | Set<PickleValue>
  | PyGlobal
  | PyObject
  | StorageRef
  | TensorRef;

/**
 * A Python global the allow-list resolved. `call` is our own re-implementation of what Python would
 * do (e.g. build a Map for OrderedDict); globals without `call` are only tokens (storage types, dtypes).
 */
export class PyGlobal {
  constructor(
    readonly name: string,
    readonly call?: (args: PickleValue[]) => PickleValue,
    /** Set on torch.*Storage classes: their element type. */
    readonly storageDType?: StorageDType,
    /** Set on torch dtypes such as torch.float32. */
    readonly dtype?: StorageDType,
  ) {}
}

/** An instance of an allow-listed plain data class (argparse.Namespace, numpy.dtype): its pickled state only. */
export class PyObject {
  state: PickleValue = null;
  constructor(
    readonly className: string,
    readonly args: readonly PickleValue[],
  ) {}
}

/** A torch storage the pickle refers to by key; its bytes live elsewhere in the file. */
export class StorageRef {
  constructor(
    readonly key: string,
    readonly dtype: StorageDType,
    /** Elements in the storage (as the pickle states it). */
    readonly numel: number,
    readonly location: string,
    /** Legacy files only: this storage is a view into `key`'s storage from element `offset`. */
    readonly view?: { readonly offset: number; readonly numel: number },
  ) {}
}

/** A tensor as torch pickles it: a window (offset, shape, stride, in elements) into a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    /** Element type: the storage's, unless the pickle names one (torch's _rebuild_tensor_v3). */
    readonly dtype: StorageDType,
  ) {}
}
