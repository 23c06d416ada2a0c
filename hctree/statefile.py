"""Training state as plain HDF5 data: no pickle, so a file can never run code.

A checkpoint state is a nested structure of dicts (any int or str keys), lists,
tuples, numbers, strings, booleans, None, numpy arrays and torch tensors. It is
stored as one JSON *skeleton* (an HDF5 attribute) in which every array is replaced
by a reference to a dataset ``arrays/<i>``. Reading parses JSON and copies
datasets: nothing is executed, and anything that does not follow this layout is
refused with :class:`StateFileError`.
"""

from __future__ import annotations

import io
import json
from typing import Any

import h5py
import numpy as np
import torch

from hctree.errors import HCTreeError

LAYOUT = "hctree-state-1"


class StateFileError(HCTreeError):
    """A state file that is damaged or was not written by :func:`write_state`."""


def _encode(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        dtype = str(tensor.dtype).removeprefix("torch.")
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.view(torch.int16)
        arrays.append(tensor.numpy().copy())
        return {"tensor": len(arrays) - 1, "dtype": dtype}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot store a numpy array of dtype {value.dtype}")
        arrays.append(np.ascontiguousarray(value))
        return {"array": len(arrays) - 1}
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"cannot store a dict key of type {type(key).__name__}")
            items.append([key, _encode(item, arrays)])
        return {"dict": items}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(item, arrays) for item in value]}
    if isinstance(value, np.generic):
        return {"value": value.item()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot store a value of type {type(value).__name__}")


def _decode(node: Any, arrays: h5py.Group) -> Any:
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise StateFileError("its skeleton is malformed")
    if "tensor" in node:
        data = _array(arrays, node["tensor"])
        dtype = node.get("dtype")
        if dtype == "bfloat16":
            return torch.from_numpy(data).view(torch.bfloat16)
        tensor = torch.from_numpy(data)
        if not isinstance(dtype, str) or str(tensor.dtype).removeprefix("torch.") != dtype:
            raise StateFileError("a tensor's dtype does not match its data")
        return tensor
    if "array" in node:
        return _array(arrays, node["array"])
    ((kind, body),) = node.items()
    if kind == "value":
        if body is not None and not isinstance(body, (bool, int, float, str)):
            raise StateFileError("its skeleton holds a value of an unknown kind")
        return body
    if kind == "dict" and isinstance(body, list):
        out = {}
        for pair in body:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))):
                raise StateFileError("a dict in its skeleton is malformed")
            out[pair[0]] = _decode(pair[1], arrays)
        return out
    if kind in ("list", "tuple") and isinstance(body, list):
        items = [_decode(item, arrays) for item in body]
        return items if kind == "list" else tuple(items)
    raise StateFileError(f"its skeleton has an unknown entry {kind!r}")


def _array(arrays: h5py.Group, index: Any) -> np.ndarray:
    if not isinstance(index, int) or isinstance(index, bool) or str(index) not in arrays:
        raise StateFileError("its skeleton names an array it does not hold")
    data = arrays[str(index)][...]
    if data.dtype.kind not in "biuf":
        raise StateFileError("it holds an array of a non-numeric type")
    return np.array(data)


def write_state(group: h5py.Group, state: Any) -> None:
    """Store ``state`` under ``group`` (a file or group opened for writing)."""
    arrays: list[np.ndarray] = []
    skeleton = _encode(state, arrays)
    group.attrs["layout"] = LAYOUT
    group.attrs["skeleton"] = json.dumps(skeleton)
    store = group.create_group("arrays")
    for i, array in enumerate(arrays):
        store.create_dataset(str(i), data=array)


def read_state(group: h5py.Group) -> Any:
    """The state stored by :func:`write_state`; StateFileError for anything else."""
    layout = group.attrs.get("layout")
    if isinstance(layout, bytes):
        layout = layout.decode()
    if layout != LAYOUT or "arrays" not in group:
        raise StateFileError("it is not in hctree's checkpoint layout")
    skeleton = group.attrs.get("skeleton")
    if isinstance(skeleton, bytes):
        skeleton = skeleton.decode()
    try:
        parsed = json.loads(skeleton)
    except (TypeError, ValueError):
        raise StateFileError("its skeleton is not valid JSON") from None
    return _decode(parsed, group["arrays"])


def state_to_bytes(state: Any) -> bytes:
    """``state`` as the bytes of an in-memory HDF5 file (see :func:`state_from_bytes`)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        write_state(f, state)
    return buffer.getvalue()


def state_from_bytes(blob: bytes) -> Any:
    """Inverse of :func:`state_to_bytes`."""
    try:
        with h5py.File(io.BytesIO(blob), "r") as f:
            return read_state(f)
    except OSError:
        raise StateFileError("it is not an HDF5 file") from None
