"""_h5: HDF5 values to plain Python (str, int, float, numpy arrays)."""
import numpy as np

try:
    import h5py
except ImportError as exc:  # pragma: no cover - Debian python3-h5py is a dependency
    raise ImportError("facrnn_py needs h5py (Debian package python3-h5py; run with /usr/bin/python3)") from exc


def plain(v):
    """HDF5 attribute/dataset value -> str, int, float or numpy array."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "SO":
            flat = [plain(x) for x in v.ravel()]
            if v.ndim == 0:
                return flat[0]
            return np.array(flat, dtype=object).reshape(v.shape)
        if v.ndim == 0:
            return v.item()
        return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def attrs(obj):
    return {k: plain(obj.attrs[k]) for k in obj.attrs.keys()}


def read_group_arrays(g):
    """Every dataset directly in group g -> {name: array}."""
    return {name: plain(item[()]) for name, item in g.items() if isinstance(item, h5py.Dataset)}
