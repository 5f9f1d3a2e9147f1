"""data: read a facrnn input file (docs/formats.md, "Input").

load_data returns plain numpy arrays plus the optional labels the report
uses: /channel_area (the area of each channel) and the root attribute
condition_labels (the name of each condition value).
"""
import os

import numpy as np

from ._h5 import attrs, h5py, plain, read_group_arrays


def load_data(path):
    """Read a facrnn input file: {"path", "attrs", "data" (total_bins, N),
    "trial_offsets" (n_trials+1,), and when present "inputs", "behavior",
    "trial_condition" (n_trials,), "channel_area" (N,) (from /channel_area,
    else /truth/channel_area), "condition_labels" {value: text}, "truth":
    {latents (total_bins, K*), groups [sizes], A, B, c, d, ...}}. Raises
    ValueError (one line) on a file that is not a facrnn input file."""
    if not os.path.exists(path):
        raise ValueError("%s: no such file" % path)
    if not h5py.is_hdf5(path):
        raise ValueError("%s: not an HDF5 file (so not a facrnn input file)" % path)
    with h5py.File(path, "r") as f:
        for name in ("data", "trial_offsets"):
            if name not in f:
                raise ValueError("%s: not a facrnn input file (dataset /%s missing)" % (path, name))
        out = {"path": os.path.abspath(path), "attrs": attrs(f),
               "data": np.asarray(f["data"][()], dtype=float),
               "trial_offsets": np.asarray(f["trial_offsets"][()], dtype=np.int64)}
        for name in ("inputs", "behavior", "trial_condition"):
            if name in f:
                out[name] = np.asarray(f[name][()])
        area = f.get("channel_area")
        if area is None and "truth" in f:
            area = f["truth"].get("channel_area")
        if isinstance(area, h5py.Dataset):
            out["channel_area"] = np.atleast_1d(plain(area[()]))
        if "truth" in f:
            t = read_group_arrays(f["truth"])
            if "latents" in f["truth"] and "groups" in f["truth/latents"].attrs:
                t["groups"] = [int(x) for x in np.atleast_1d(f["truth/latents"].attrs["groups"])]
            elif "latents" in t:
                t["groups"] = [t["latents"].shape[1]]
            out["truth"] = t
    off = out["trial_offsets"]
    if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != out["data"].shape[0] or np.any(np.diff(off) <= 0):
        raise ValueError("%s: /trial_offsets is not a valid offsets vector for /data with %d rows"
                         % (path, out["data"].shape[0]))
    if "channel_area" in out and out["channel_area"].shape[0] != out["data"].shape[1]:
        raise ValueError("%s: /channel_area has %d entries for %d channels"
                         % (path, out["channel_area"].shape[0], out["data"].shape[1]))
    labels = out["attrs"].get("condition_labels")
    if labels is not None:
        out["condition_labels"] = {i: str(s) for i, s in enumerate(np.atleast_1d(labels))}
    return out


def trial_slices(offsets):
    return [slice(int(a), int(b)) for a, b in zip(offsets[:-1], offsets[1:])]


def condition_name(data, c):
    """The label of condition value c from the input's condition_labels, else
    "condition c"."""
    labels = (data or {}).get("condition_labels") or {}
    key = int(c) if np.ndim(c) == 0 and float(c) == int(c) else c
    return labels.get(key, "condition %s" % c)
