"""Minimal safetensors writer/reader (plain json + struct + numpy), in the layout of
docs/tensor-format.md: tensors sorted by element size (8-byte first) then name, stored back to
back; the JSON header padded with spaces so that 8 + N is a multiple of 8; metadata strings only."""
import json
import struct

import numpy as np

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64"}
_NP = {v: k for k, v in _DTYPES.items()}


def write(path, tensors, metadata):
    """tensors: name -> numpy array (float32, float64 or int64); metadata: str -> str."""
    arrays = {}
    for name, a in tensors.items():
        a = np.asarray(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        arrays[name] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    order = sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))
    header, offset = {}, 0
    for name in order:
        a = arrays[name]
        header[name] = {"dtype": _DTYPES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise TypeError(f"metadata {k} is not a string")
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name in order:
            f.write(arrays[name].tobytes())


def read(path):
    """Returns (tensors, metadata)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        dt = _NP[h["dtype"]].newbyteorder("<")
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(tuple(h["shape"])).astype(_NP[h["dtype"]])
    return out, meta
