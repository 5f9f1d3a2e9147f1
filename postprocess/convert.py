#!/usr/bin/python3
"""Convert common recording formats into the facrnn input HDF5 file.

The output follows docs/formats.md ("Input: one HDF5 file per data set"):

    /data             [total_bins, N]   activity, trial after trial
    /trial_offsets    [n_trials + 1]    int64; trial k is rows offsets[k]..offsets[k+1]-1
    /inputs           [total_bins, D]   optional known inputs
    /behavior         [total_bins, P]   optional behaviour (e.g. hand velocity)
    /trial_condition  [n_trials]        optional integer condition label per trial
    /mask             [total_bins, N]   optional (--mask-nan) uint8, 1 = observed, 0 = missing
    /trial_ids, /trial_split, /channel_ids   optional (nwb): source trial ids,
                                      each trial's split (text), the units' ids
    root attributes   format_version=1, bin_size_s, observation, description
                      (and condition_labels when text labels were mapped to ints,
                      behavior_columns naming the NWB series of each /behavior column)

Formats (first argument):

  npy   a 3-D array (trials x time x channels), or a 2-D array (bins x channels)
        with --trial-ids FILE.npy (one id per row) or --offsets FILE.npy.
  npz   like npy, arrays chosen by name: --data-key (default "data"),
        --trial-key / --offsets-key for 2-D data, --behavior-key,
        --inputs-key, --condition-key.
  mat   MATLAB file read with scipy.io.loadmat; variables chosen by --data-key
        (default "data"), --trial-key, --offsets-key, --behavior-key,
        --inputs-key, --condition-key. The data may be 3-D, 2-D plus trial ids,
        or a cell array of per-trial (time x channels) matrices of different
        lengths (behaviour and inputs then also cell arrays).
  csv   binned counts, one row per bin; --trial-col names the trial-id column
        (header name or 0-based index, default 0), --condition-col optionally a
        condition column, --ignore-cols columns to drop (e.g. time); every other
        column is a channel. A header row is detected (non-numeric first row).
  nwb   an NWB 2.x (HDF5) file, read with h5py (pynwb is not needed):
        spike times of the units table (/units/spike_times with the ragged
        index /units/spike_times_index) are binned at --bin-size seconds.
        Trials: by default the rows of /intervals/trials, [start_time,
        stop_time); with --align EVENT --window W0 W1 each trial is
        [EVENT + W0, EVENT + W1) for a trials column of event times (e.g.
        --align move_onset_time --window -0.25 0.45; --window alone aligns to
        start_time), so a NaN stop_time does not matter. Bins are
        [b + i*bin, b + (i+1)*bin) from the trial's start b; a final partial
        bin is dropped. Without a trials table, --window-length S cuts the
        span that every source covers (first to last spike, within the
        behaviour's timestamps) into consecutive windows of S seconds.
        --condition-col names a trials column of conditions; --split-col a
        column of splits (NLB: split, with train/val/test), written to
        /trial_split, and --splits train,val keeps those trials only.
        Behaviour: the TimeSeries and SpatialSeries under
        /processing/behavior (e.g. Position/hand; data [T] or [T, D] times its
        conversion plus offset, at timestamps or starting_time + i/rate) are
        linearly interpolated to the bin centres into /behavior, all of them
        by default or those named by --behavior NAME[,NAME]; the column names
        go to the behavior_columns attribute. /units/id is written to
        /channel_ids, /intervals/trials/id to /trial_ids. A NaN time, a
        missing or ragged column, or a bin centre outside a series'
        timestamps is refused with one line naming it.

Layout: --layout names the axes of a 3-D array in order, default
trials,time,channels (e.g. --layout channels,time,trials for a neurons x time
x trials array); for 2-D data and MATLAB cells it names the two axes of each
matrix, default time,channels. Without --layout, shapes that suggest a wrong
layout are refused with a one-line error naming the fix: more channels than
bins in every trial (pass --layout to confirm when that is right), and a CSV
column that increases within every trial like a time stamp (--ignore-cols).

NaN padding: --trim-nan drops the trailing bins of each trial in which every
channel is NaN (trials padded to a common length, as nlb_tools writes them).
Missing values: --mask-nan turns every NaN left inside the trials (after any
--trim-nan) into a missing entry: /data = 0 there and /mask = 0 (uint8, same
shape as /data, 1 = observed), which facrnn leaves out of the likelihood and
the metrics; /mask is written only when some entry is missing, and the
summary counts them and names channels and trials with no observed entry.
Without --mask-nan any NaN is an error; Inf always is.

MATLAB v7.3 files (HDF5 inside) are read with h5py: numeric arrays in MATLAB's
shape, cell arrays of per-trial matrices as above.

Rows with the same trial id are grouped in order of first appearance, keeping
their row order. Per-row condition labels must be constant within a trial.
Text condition labels are mapped to 0..C-1 in sorted order and the labels are
stored in the `condition_labels` attribute.

--observation defaults to poisson when every value is a non-negative integer,
else gaussian. Integer input is stored as int32 counts, floating input as
float64 (--dtype overrides). The written file is re-opened and validated
(no NaN/Inf, offsets strictly increasing from 0 to total_bins, shapes agree,
counts non-negative integers under poisson) and a summary is printed.

Errors are one line on stderr with exit status 2, never a traceback. A missing
output folder is created.

Example:
  postprocess/convert.py nwb session.nwb --out session.h5 --bin-size 0.02 \\
      --align move_onset_time --window -0.25 0.45 --condition-col condition \\
      --split-col split --splits train,val --description "M1 reaching, 20 ms bins"
"""
import argparse
import os
import sys

import h5py
import numpy as np

FORMAT_VERSION = 1


class ConvertError(Exception):
    """A problem with the input or the options; reported as one line."""


# ---- trial assembly ----------------------------------------------------------


def group_rows(trial_ids):
    """Return (order, offsets): a row permutation that groups rows by trial id
    in order of first appearance (stable within a trial), and the offsets."""
    ids = np.asarray(trial_ids).ravel()
    if ids.size == 0:
        raise ConvertError("trial ids: empty")
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank_of_unique = np.argsort(np.argsort(first))  # first-appearance order
    trial_index = rank_of_unique[inverse]
    order = np.argsort(trial_index, kind="stable")
    counts = np.bincount(trial_index)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return order, offsets, trial_index


def per_trial_condition(cond, trial_index, n_trials, name="condition"):
    """Per-row labels -> one label per trial (must be constant within a trial)."""
    cond = np.asarray(cond).ravel()
    out = np.empty(n_trials, dtype=cond.dtype)
    seen = np.zeros(n_trials, dtype=bool)
    for row, (k, c) in enumerate(zip(trial_index, cond)):
        if not seen[k]:
            out[k], seen[k] = c, True
        elif out[k] != c:
            raise ConvertError(f"{name}: trial {k} has two labels ({out[k]!r} and {c!r}) at row {row}")
    return out


def condition_to_int(cond):
    """Integer labels pass through; text labels map to 0..C-1 (sorted)."""
    cond = np.asarray(cond).ravel()
    if cond.dtype.kind in "iu":
        return cond.astype(np.int64), None
    if cond.dtype.kind == "f":
        if not np.all(np.isfinite(cond)) or np.any(cond != np.round(cond)):
            bad = int(np.flatnonzero(~np.isfinite(cond) | (cond != np.round(cond)))[0])
            raise ConvertError(f"condition: non-integer label {cond[bad]!r} at index {bad}")
        return cond.astype(np.int64), None
    text = np.array([c.decode() if isinstance(c, bytes) else str(c) for c in cond])
    labels = sorted(set(text.tolist()))
    lookup = {lab: i for i, lab in enumerate(labels)}
    return np.array([lookup[t] for t in text], dtype=np.int64), labels


def as_2d(a, name):
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ConvertError(f"{name}: expected a 2-D array (bins x columns), got shape {a.shape}")
    return a


def from_3d(data, name="data"):
    """(trials, time, channels) -> rows, offsets."""
    if data.ndim != 3:
        raise ConvertError(f"{name}: expected 3 dimensions (trials x time x channels), got shape {data.shape}")
    n, t, c = data.shape
    return data.reshape(n * t, c), np.arange(n + 1, dtype=np.int64) * t


def offsets_checked(offsets, total, name):
    off = np.asarray(offsets).ravel()
    if off.dtype.kind not in "iuf" or np.any(off != np.round(off)):
        raise ConvertError(f"{name}: offsets must be integers")
    off = off.astype(np.int64)
    if off.size < 2 or off[0] != 0 or off[-1] != total:
        raise ConvertError(f"{name}: offsets must start at 0 and end at {total} (the number of rows), "
                           f"got {off[:1].tolist()}..{off[-1:].tolist()}")
    bad = np.flatnonzero(np.diff(off) <= 0)
    if bad.size:
        raise ConvertError(f"{name}: offsets not strictly increasing at index {int(bad[0]) + 1}")
    return off


AXES3 = ("trials", "time", "channels")
AXES2 = ("time", "channels")


def parse_layout(text, axes):
    """'channels,time,trials' -> the permutation that brings an array in that
    layout to `axes` order."""
    names = [x.strip() for x in text.split(",")]
    if sorted(names) != sorted(axes):
        raise ConvertError(f"--layout {text}: expected the axes {', '.join(axes)} in some order")
    return [names.index(a) for a in axes]


def apply_layout(a, layout, name):
    """Transpose a 3-D array (or a 2-D matrix) from --layout to the default order."""
    a = np.asarray(a)
    if layout is None or a.ndim not in (2, 3):
        return a
    names = [x.strip() for x in layout.split(",")]
    if a.ndim == 3:
        if len(names) != 3:
            raise ConvertError(f"--layout {layout}: {name} has 3 dimensions, so name 3 axes (e.g. trials,time,channels)")
        return np.transpose(a, parse_layout(layout, AXES3))
    if len(names) == 3:  # 2-D matrices: the trials axis is implicit
        names = [n for n in names if n != "trials"]
    return np.transpose(a, parse_layout(",".join(names), AXES2))


def trim_nan(data, extra):
    """3-D (trials, time, channels) padded with all-NaN bins at the end of each
    trial -> rows, offsets, and the extra arrays (same (trials, time) layout) cut alike."""
    n, t, c = data.shape
    lengths = []
    for k in range(n):
        allnan = np.all(np.isnan(data[k]), axis=1)
        keep = t - int(np.argmin(allnan[::-1])) if not allnan.all() else 0
        if keep == 0:
            raise ConvertError(f"--trim-nan: trial {k} is all NaN")
        lengths.append(keep)
    rows = np.concatenate([data[k, :lengths[k]] for k in range(n)])
    off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cut = {key: np.concatenate([arr[k, :lengths[k]] for k in range(n)]) for key, arr in extra.items()}
    return rows, off, cut


def check_wide(max_len, n_channels, shape, args):
    """More channels than bins in every trial usually means a transposed array."""
    if args is not None and args.layout is None and n_channels > max_len:
        raise ConvertError(f"data: {n_channels} channels but at most {max_len} bins per trial (shape {tuple(shape)}): "
                           f"the axes are probably in another order; pass --layout (e.g. --layout "
                           f"channels,time,trials), or --layout trials,time,channels if this is right")


def assemble(data, *, trial_ids=None, offsets=None, behavior=None, inputs=None, condition=None, label="data",
             args=None):
    """Common path for array inputs (npy, npz, mat, csv).

    data: 3-D (trials, time, channels) or 2-D (bins, channels) with trial_ids
    (one per row) or offsets. behavior/inputs follow data's layout; condition
    is one per trial, or one per row for 2-D data with trial ids.
    Returns a dict with data, offsets, and the optional arrays.
    """
    layout = getattr(args, "layout", None)
    data = apply_layout(data, layout, label)
    if data.ndim == 3:
        behavior = None if behavior is None else apply_layout(behavior, layout, "behavior")
        inputs = None if inputs is None else apply_layout(inputs, layout, "inputs")
    out = {}
    if data.ndim == 3 and getattr(args, "trim_nan", False):
        extra = {}
        for key, arr in (("behavior", behavior), ("inputs", inputs)):
            if arr is not None:
                arr = np.asarray(arr, dtype=np.float64)
                if arr.ndim == 2 and arr.shape[:1] == data.shape[:1]:
                    arr = arr[:, :, None]
                if arr.ndim != 3 or arr.shape[:2] != data.shape[:2]:
                    raise ConvertError(f"{key}: shape {arr.shape} does not match data's (trials, time) {data.shape[:2]}")
                extra[key] = arr
        rows, off, cut = trim_nan(np.asarray(data, dtype=np.float64), extra)
        check_wide(int(np.diff(off).max()), data.shape[2], data.shape, args)
        return assemble(rows, offsets=off, condition=condition, label=label, **cut)
    if data.ndim == 3:
        if trial_ids is not None or offsets is not None:
            raise ConvertError(f"{label}: 3-D data already defines trials; drop the trial ids / offsets")
        check_wide(data.shape[1], data.shape[2], data.shape, args)
        out["data"], out["offsets"] = from_3d(data, label)
        for key, arr in (("behavior", behavior), ("inputs", inputs)):
            if arr is not None:
                arr = np.asarray(arr)
                if arr.ndim == 2 and arr.shape[:1] == data.shape[:1]:
                    arr = arr[:, :, None]
                if arr.ndim != 3 or arr.shape[:2] != data.shape[:2]:
                    raise ConvertError(f"{key}: shape {arr.shape} does not match data's (trials, time) {data.shape[:2]}")
                out[key] = arr.reshape(data.shape[0] * data.shape[1], -1)
        n_trials = data.shape[0]
        trial_index = None
    elif data.ndim == 2:
        if (trial_ids is None) == (offsets is None):
            raise ConvertError(f"{label}: 2-D data needs exactly one of trial ids or offsets")
        if trial_ids is not None:
            trial_ids = np.asarray(trial_ids).ravel()
            if trial_ids.size != data.shape[0]:
                raise ConvertError(f"trial ids: {trial_ids.size} ids for {data.shape[0]} rows of {label}")
            order, off, trial_index = group_rows(trial_ids)
        else:
            off = offsets_checked(offsets, data.shape[0], "offsets")
            order, trial_index = np.arange(data.shape[0]), np.repeat(np.arange(off.size - 1), np.diff(off))
        out["data"], out["offsets"] = data[order], off
        check_wide(int(np.diff(off).max()), data.shape[1], data.shape, args)
        for key, arr in (("behavior", behavior), ("inputs", inputs)):
            if arr is not None:
                arr = as_2d(arr, key)
                if arr.shape[0] != data.shape[0]:
                    raise ConvertError(f"{key}: {arr.shape[0]} rows but {label} has {data.shape[0]}")
                out[key] = arr[order]
        n_trials = off.size - 1
    else:
        raise ConvertError(f"{label}: expected a 3-D (trials x time x channels) or 2-D (bins x channels) array, "
                           f"got shape {data.shape}")
    if condition is not None:
        cond = np.asarray(condition).ravel()
        if trial_index is not None and cond.size == trial_index.size and cond.size != n_trials:
            cond = per_trial_condition(cond, trial_index, n_trials)
        if cond.size != n_trials:
            raise ConvertError(f"condition: {cond.size} labels for {n_trials} trials")
        out["condition"] = cond
    return out


def from_cells(cells, label, layout=None):
    """A list of per-trial (time x channels) matrices (or --layout's order) -> rows, offsets."""
    mats = [apply_layout(as_2d(np.asarray(c, dtype=np.float64) if np.asarray(c).dtype == object else np.asarray(c),
                               f"{label}[{k}]"), layout, label) for k, c in enumerate(cells)]
    if not mats:
        raise ConvertError(f"{label}: empty cell array")
    widths = {m.shape[1] for m in mats}
    if len(widths) != 1:
        k = next(k for k, m in enumerate(mats) if m.shape[1] != mats[0].shape[1])
        hint = ""
        if len({m.shape[0] for m in mats}) == 1:
            hint = (f"; every cell has {mats[0].shape[0]} rows, so the cells look like channels x time: "
                    f"pass --layout channels,time")
        raise ConvertError(f"{label}[{k}]: {mats[k].shape[1]} columns, but {label}[0] has {mats[0].shape[1]}{hint}")
    empty = [k for k, m in enumerate(mats) if m.shape[0] == 0]
    if empty:
        raise ConvertError(f"{label}[{empty[0]}]: trial has no bins")
    offsets = np.concatenate([[0], np.cumsum([m.shape[0] for m in mats])]).astype(np.int64)
    return np.concatenate(mats, axis=0), offsets


# ---- readers -------------------------------------------------------------------


def load_array_file(path, what):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConvertError(f"{what}: cannot read '{path}': {e}")


def read_npy(args):
    data = load_array_file(args.input, "input")
    if isinstance(data, np.lib.npyio.NpzFile):
        raise ConvertError(f"'{args.input}' is an .npz archive; use format npz")
    trial_ids = load_array_file(args.trial_ids, "--trial-ids") if args.trial_ids else None
    offsets = load_array_file(args.offsets, "--offsets") if args.offsets else None
    behavior = load_array_file(args.behavior, "--behavior") if args.behavior else None
    inputs = load_array_file(args.inputs, "--inputs") if args.inputs else None
    condition = load_array_file(args.condition, "--condition") if args.condition else None
    return assemble(data, trial_ids=trial_ids, offsets=offsets, behavior=behavior, inputs=inputs,
                    condition=condition, args=args)


def pick(store, key, what, required=False):
    if key is None:
        return None
    if key not in store:
        if not required and key in ("behavior", "inputs", "condition", "trial_ids", "offsets"):
            return None  # default names are optional
        names = ", ".join(k for k in store.keys() if not k.startswith("__"))
        raise ConvertError(f"{what}: no variable '{key}' in the input (it has: {names})")
    return store[key]


def read_npz(args):
    z = load_array_file(args.input, "input")
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ConvertError(f"'{args.input}' is not an .npz archive; use format npy")
    with z:
        store = {k: z[k] for k in z.files}
    return assemble(pick(store, args.data_key, "--data-key", True),
                    trial_ids=pick(store, args.trial_key, "--trial-key"),
                    offsets=pick(store, args.offsets_key, "--offsets-key"),
                    behavior=pick(store, args.behavior_key, "--behavior-key"),
                    inputs=pick(store, args.inputs_key, "--inputs-key"),
                    condition=pick(store, args.condition_key, "--condition-key"), args=args)


def load_mat73(path):
    """MATLAB v7.3 (HDF5) variables -> {name: array in MATLAB's shape}; a cell
    array becomes an object array of its (MATLAB-shaped) matrices."""
    def value(f, d):
        if d.dtype == h5py.ref_dtype:  # cell array: references to the cells
            refs = d[()]
            cells = np.empty(refs.T.shape, dtype=object)
            for idx in np.ndindex(refs.shape):
                cells[idx[::-1]] = value(f, f[refs[idx]])
            return cells
        return np.asarray(d[()]).T  # column-major on disk: transpose back to MATLAB's shape
    try:
        with h5py.File(path, "r") as f:
            return {k: value(f, f[k]) for k in f.keys()
                    if not k.startswith("#") and isinstance(f[k], h5py.Dataset)}
    except OSError as e:
        raise ConvertError(f"input: cannot read MATLAB v7.3 file '{path}': {e}")


def read_mat(args):
    import scipy.io

    if h5py.is_hdf5(args.input):
        store = load_mat73(args.input)
    else:
        try:
            store = scipy.io.loadmat(args.input, squeeze_me=False)
        except (OSError, ValueError, NotImplementedError) as e:
            raise ConvertError(f"input: cannot read MATLAB file '{args.input}': {e}")
    data = pick(store, args.data_key, "--data-key", True)
    behavior = pick(store, args.behavior_key, "--behavior-key")
    inputs = pick(store, args.inputs_key, "--inputs-key")
    condition = pick(store, args.condition_key, "--condition-key")
    if data.dtype == object:  # cell array of per-trial matrices
        rows, offsets = from_cells(data.ravel(order="F"), args.data_key, args.layout)
        check_wide(int(np.diff(offsets).max()), rows.shape[1], (len(offsets) - 1, "cells", rows.shape[1]), args)
        extra = {}
        for key, arr in (("behavior", behavior), ("inputs", inputs)):
            if arr is None:
                continue
            if arr.dtype != object:
                raise ConvertError(f"{key}: must be a cell array like the data")
            r, o = from_cells(arr.ravel(order="F"), key, args.layout)
            if not np.array_equal(o, offsets):
                raise ConvertError(f"{key}: per-trial lengths differ from the data's")
            extra[key] = r
        return assemble(rows, offsets=offsets, condition=condition, label=args.data_key, **extra)
    return assemble(data, trial_ids=pick(store, args.trial_key, "--trial-key"),
                    offsets=pick(store, args.offsets_key, "--offsets-key"), behavior=behavior, inputs=inputs,
                    condition=condition, label=args.data_key, args=args)


def column_index(spec, header, ncols, flag):
    if spec is None:
        return None
    if header is not None and spec in header:
        return header.index(spec)
    try:
        i = int(spec)
    except ValueError:
        raise ConvertError(f"{flag}: no column named '{spec}' (header: {', '.join(header or [])})")
    if not 0 <= i < ncols:
        raise ConvertError(f"{flag}: column {i} out of range (the file has {ncols} columns)")
    return i


def check_time_column(values, trial_ids, names):
    """A column that increases at every bin of every trial is a time stamp, not a channel."""
    ids = np.asarray(trial_ids)
    same = ids[1:] == ids[:-1]
    if values.shape[0] < 3 or not same.any():
        return
    d = np.diff(values.astype(np.float64), axis=0)[same]
    for j, name in enumerate(names):
        if np.all(d[:, j] > 0):
            raise ConvertError(f"input: column '{name}' increases at every bin of every trial, like a time stamp: "
                               f"drop it with --ignore-cols {name}")


def read_csv(args):
    import csv

    try:
        with open(args.input, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=args.delimiter) if r and any(x.strip() for x in r)]
    except OSError as e:
        raise ConvertError(f"input: cannot read '{args.input}': {e.strerror}")
    if not rows:
        raise ConvertError(f"input: '{args.input}' has no rows")

    def numeric(x):
        try:
            float(x)
            return True
        except ValueError:
            return False

    header = None
    if not all(numeric(x) for x in rows[0]):
        header = [x.strip() for x in rows[0]]
        rows = rows[1:]
    ncols = len(header) if header else len(rows[0])
    for i, r in enumerate(rows):
        if len(r) != ncols:
            raise ConvertError(f"input: row {i + 1 + (header is not None)} has {len(r)} columns, expected {ncols}")
    tcol = column_index(args.trial_col, header, ncols, "--trial-col")
    ccol = column_index(args.condition_col, header, ncols, "--condition-col")
    drop = {column_index(c, header, ncols, "--ignore-cols") for c in (args.ignore_cols or "").split(",") if c}
    chans = [j for j in range(ncols) if j != tcol and j != ccol and j not in drop]
    if not chans:
        raise ConvertError("input: no channel columns left")
    values = np.empty((len(rows), len(chans)))
    for i, r in enumerate(rows):
        for jj, j in enumerate(chans):
            try:
                values[i, jj] = float(r[j])
            except ValueError:
                name = header[j] if header else str(j)
                raise ConvertError(f"input: row {i + 1 + (header is not None)}, column '{name}': "
                                   f"not a number: {r[j]!r}")
    if np.all(values == np.round(values)) and np.all(np.isfinite(values)):
        values = values.astype(np.int64)
    trial_ids = [r[tcol].strip() for r in rows]
    condition = None
    if ccol is not None:
        raw = [r[ccol].strip() for r in rows]
        condition = np.array([int(x) for x in raw]) if all(x.lstrip("-").isdigit() for x in raw) else np.array(raw)
    check_time_column(values, trial_ids, [header[j] if header else str(j) for j in chans])
    return assemble(values, trial_ids=np.array(trial_ids), condition=condition, label="input")


# ---- NWB 2.x (read through h5py; pynwb is not needed) ---------------------------
#
# The layout read here (NWB 2.x, as pynwb writes it):
#   /units/spike_times [S], /units/spike_times_index [U]   ragged: unit u is spike_times[index[u-1]:index[u]]
#   /units/id [U]                                          the units' ids -> /channel_ids
#   /intervals/trials/{id,start_time,stop_time,<columns>}  one row per trial
#   /processing/behavior/<Interface>/<series>/{data,timestamps | starting_time(@rate)}
#                                                          TimeSeries / SpatialSeries, data [T] or [T, D]

NWB_SERIES_TYPES = ("TimeSeries", "SpatialSeries")


def h5_text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def nwb_column(f, name, flag):
    """One value per trial from /intervals/trials/<name>: numbers as float64 or
    int64, text as an object array of str. Missing or ragged columns are
    refused with one line naming the column and the option."""
    trials = f["intervals/trials"]
    if name not in trials or not isinstance(trials[name], h5py.Dataset):
        cols = ", ".join(sorted(k for k in trials.keys() if isinstance(trials[k], h5py.Dataset)))
        raise ConvertError(f"{flag} {name}: no column '{name}' in /intervals/trials (it has: {cols})")
    if f"{name}_index" in trials:
        raise ConvertError(f"{flag} {name}: /intervals/trials/{name} is a ragged column (several values per "
                           f"trial); one value per trial is needed")
    d = trials[name]
    if d.ndim != 1:
        raise ConvertError(f"{flag} {name}: /intervals/trials/{name} has shape {d.shape}, one value per trial is needed")
    if h5py.check_string_dtype(d.dtype) is not None or d.dtype.kind == "S":
        return np.array([h5_text(v) for v in d[()]], dtype=object)
    if d.dtype.kind == "b":
        return d[()].astype(np.int64)
    if d.dtype.kind not in "iuf":
        raise ConvertError(f"{flag} {name}: /intervals/trials/{name} is neither numbers nor text (dtype {d.dtype})")
    return d[()]


def nwb_behavior_series(f):
    """{name: group} of the TimeSeries/SpatialSeries under /processing/behavior,
    named by their path below it (e.g. 'Position/hand'), in file order."""
    found = {}
    root = f.get("processing/behavior")
    if not isinstance(root, h5py.Group):
        return found

    def is_series(g):
        kind = h5_text(g.attrs.get("neurodata_type", "TimeSeries"))
        return kind in NWB_SERIES_TYPES and isinstance(g.get("data"), h5py.Dataset)

    for name, obj in root.items():
        if not isinstance(obj, h5py.Group):
            continue
        if is_series(obj):
            found[name] = obj
            continue
        for sub, s in obj.items():  # an interface (Position, BehavioralTimeSeries, ...) holding series
            if isinstance(s, h5py.Group) and is_series(s):
                found[f"{name}/{sub}"] = s
    return found


def nwb_pick_behavior(found, spec):
    """--behavior NAME[,NAME] -> [(name, group)]; a name is a path below
    /processing/behavior or, when unique, the series' own name."""
    if spec is None:
        return list(found.items())
    have = ", ".join(found) or "none"
    out = []
    for want in [s.strip() for s in spec.split(",") if s.strip()]:
        if want in found:
            out.append((want, found[want]))
            continue
        leaf = [k for k in found if k.rsplit("/", 1)[-1] == want]
        if len(leaf) != 1:
            why = "is ambiguous" if leaf else "not found"
            raise ConvertError(f"--behavior {want}: {why} under /processing/behavior (series: {have})")
        out.append((leaf[0], found[leaf[0]]))
    return out


def nwb_series_values(name, g):
    """A series -> (timestamps [T], values [T, D]) in seconds and the data's
    units (data * conversion + offset, as NWB defines them)."""
    d = g["data"]
    if d.dtype.kind not in "iuf" or d.ndim not in (1, 2):
        raise ConvertError(f"behavior {name}: data must be numbers of shape [T] or [T, D], got {d.dtype} {d.shape}")
    values = d[()].astype(np.float64).reshape(d.shape[0], -1)
    values = values * float(d.attrs.get("conversion", 1.0)) + float(d.attrs.get("offset", 0.0))
    if "timestamps" in g:
        ts = g["timestamps"][()].astype(np.float64).ravel()
    elif "starting_time" in g and "rate" in g["starting_time"].attrs:
        rate = float(g["starting_time"].attrs["rate"])
        if not rate > 0:
            raise ConvertError(f"behavior {name}: starting_time rate must be positive, got {rate}")
        ts = float(g["starting_time"][()]) + np.arange(values.shape[0]) / rate
    else:
        raise ConvertError(f"behavior {name}: no timestamps and no starting_time with a rate")
    if ts.size != values.shape[0] or ts.size < 2:
        raise ConvertError(f"behavior {name}: {ts.size} timestamps for {values.shape[0]} samples (need >= 2, equal)")
    bad = np.flatnonzero(~(np.diff(ts) > 0))
    if bad.size:
        raise ConvertError(f"behavior {name}: timestamps not increasing at sample {int(bad[0]) + 1}")
    return ts, values


def bin_spikes(units, begins, nbins, bs):
    """Spike counts [sum(nbins), U] in the bins [b + i*bs, b + (i+1)*bs) of
    each interval (b, n) of (begins, nbins); one searchsorted per unit."""
    edges = np.concatenate([b + bs * np.arange(n + 1) for b, n in zip(begins, nbins)])
    last = np.cumsum(np.asarray(nbins) + 1) - 1  # the position of each interval's last edge
    keep = np.ones(edges.size - 1, dtype=bool)
    keep[last[:-1]] = False  # drop the differences that straddle two intervals
    counts = np.empty((int(np.sum(nbins)), len(units)), dtype=np.int32)
    for u, st in enumerate(units):
        counts[:, u] = np.diff(np.searchsorted(st, edges, side="left"))[keep]
    return counts


def nwb_fixed_windows(spikes, series, length, bs):
    """No trials: consecutive windows of `length` seconds over the span every
    source covers, from the first spike (or the latest first behaviour sample)
    to the last. Returns (begins, nbins, names)."""
    if spikes.size == 0:
        raise ConvertError("/units/spike_times: no spikes, so no recording span to cut into windows")
    t0 = max([spikes.min()] + [ts[0] for _, ts, _ in series])
    t1 = min([spikes.max()] + [ts[-1] for _, ts, _ in series])
    nb = int(np.floor(length / bs + 1e-9))
    n_win = int(np.floor((t1 - t0) / (nb * bs) + 1e-9)) if t1 > t0 else 0
    if n_win < 1:
        raise ConvertError(f"--window-length {length:g}: the recording span {t0:g}..{t1:g} s is shorter than one window")
    return t0 + nb * bs * np.arange(n_win), np.full(n_win, nb), [f"window {k}" for k in range(n_win)]


def nwb_trial_windows(f, args, bs, out_extra):
    """Trials of /intervals/trials: [start_time, stop_time), or
    [EVENT + W0, EVENT + W1) with --window (EVENT from --align, default
    start_time), those of --splits only. Adds trial_ids and trial_split to
    out_extra; returns (begins, nbins, names, condition)."""
    condition = None
    start = nwb_column(f, "start_time", "/intervals/trials column").astype(np.float64)
    n_trials = start.size
    if n_trials == 0:
        raise ConvertError("/intervals/trials: no trials")
    tid = f["intervals/trials/id"][()].astype(np.int64).ravel() if "intervals/trials/id" in f \
        else np.arange(n_trials)
    cols, col_names = {}, {"stop_time": "stop_time"}
    for flag, name in (("--condition-col", args.condition_col), ("--split-col", args.split_col),
                       ("--align", args.align)):
        if name is not None:
            cols[flag], col_names[flag] = nwb_column(f, name, flag), name
    if args.window is None:
        if "intervals/trials/stop_time" not in f:
            raise ConvertError("input: NWB file has no /intervals/trials/stop_time; pass --window W0 W1 "
                               "(trials from start_time + W0 to start_time + W1)")
        cols["stop_time"] = nwb_column(f, "stop_time", "/intervals/trials column").astype(np.float64)
    for key, col in list(cols.items()) + [("id", tid)]:
        if col.size != n_trials:
            raise ConvertError(f"/intervals/trials: column {col_names.get(key, key)} has {col.size} rows, "
                               f"start_time has {n_trials}")
    keep = np.arange(n_trials)
    if args.split_col is not None:
        split = cols["--split-col"].astype(str)
        if args.splits is not None:
            want = [s.strip() for s in args.splits.split(",") if s.strip()]
            for s in want:
                if s not in set(split):
                    raise ConvertError(f"--splits: no trial has {args.split_col} '{s}' (values: "
                                       f"{', '.join(sorted(set(split)))})")
            keep = np.flatnonzero(np.isin(split, want))
        out_extra["trial_split"] = split[keep]
    if args.window is not None:
        event = start if args.align is None else cols["--align"]
        what = args.align or "start_time"
        if event.dtype.kind not in "iuf":
            raise ConvertError(f"--align {what}: the column is not numbers (times in seconds)")
        event = event.astype(np.float64)
        for k in keep:
            if not np.isfinite(event[k]):
                raise ConvertError(f"--align {what}: trial {k} (id {tid[k]}) has no event time ({event[k]})")
        nb = int(np.floor((args.window[1] - args.window[0]) / bs + 1e-9))
        if nb < 1:
            raise ConvertError(f"--window {args.window[0]:g} {args.window[1]:g}: shorter than one bin of {bs:g} s")
        begins = event[keep] + args.window[0]
        nbins = np.full(keep.size, nb)
    else:
        stop = cols["stop_time"]
        begins, nbins = start[keep], []
        for k in keep:
            for which, t in (("start_time", start[k]), ("stop_time", stop[k])):
                if not np.isfinite(t):
                    raise ConvertError(f"/intervals/trials: trial {k} (id {tid[k]}) has {which} {t}; pass "
                                       f"--align EVENT --window W0 W1 for fixed windows around an event")
            n = int(np.floor((stop[k] - start[k]) / bs + 1e-9))
            if n < 1:
                raise ConvertError(f"/intervals/trials: trial {k} (id {tid[k]}, {start[k]:g}..{stop[k]:g} s) is "
                                   f"shorter than one bin of {bs:g} s")
            nbins.append(n)
        nbins = np.array(nbins)
    names = [f"trial {k} (id {tid[k]})" for k in keep]
    out_extra["trial_ids"] = tid[keep]
    if args.condition_col is not None:
        condition = cols["--condition-col"][keep]
        if condition.dtype.kind == "f" and not np.all(np.isfinite(condition)):
            k = keep[int(np.flatnonzero(~np.isfinite(condition))[0])]
            raise ConvertError(f"--condition-col {args.condition_col}: trial {k} (id {tid[k]}) has no "
                               f"condition (NaN)")
    return begins, nbins, names, condition


def nwb_resample(series, begins, nbins, offsets, names, bs):
    """Behaviour series -> ([total_bins, P] values at the bin centres
    b + (i + 0.5) * bs by linear interpolation, [P] column names)."""
    centres = np.concatenate([b + bs * (np.arange(n) + 0.5) for b, n in zip(begins, nbins)])
    cols, labels = [], []
    for name, ts, values in series:
        outside = np.flatnonzero((centres < ts[0]) | (centres > ts[-1]))
        if outside.size:
            k = int(np.searchsorted(offsets, outside[0], side="right")) - 1
            raise ConvertError(f"behavior {name}: {names[k]} has a bin centred at {centres[outside[0]]:g} s, "
                               f"outside its timestamps {ts[0]:g}..{ts[-1]:g} s (choose series with --behavior)")
        for j in range(values.shape[1]):
            v = np.interp(centres, ts, values[:, j])
            bad = np.flatnonzero(~np.isfinite(v))
            if bad.size:
                k = int(np.searchsorted(offsets, bad[0], side="right")) - 1
                raise ConvertError(f"behavior {name}: NaN near {centres[bad[0]]:g} s in {names[k]} "
                                   f"(choose series with --behavior)")
            cols.append(v)
            labels.append(f"{name}[{j}]")
    return np.stack(cols, axis=1), labels


def read_nwb(args):
    """NWB 2.x -> the common dict of assemble(), plus channel_ids, trial_ids,
    trial_split and behavior_columns when the file has them."""
    bs = args.bin_size
    if args.window is not None and not args.window[1] > args.window[0]:
        raise ConvertError(f"--window {args.window[0]:g} {args.window[1]:g}: the end must be after the start")
    if args.align is not None and args.window is None:
        raise ConvertError(f"--align {args.align}: needs --window W0 W1 (seconds around the event)")
    if args.splits is not None and args.split_col is None:
        raise ConvertError("--splits: needs --split-col (the trials column holding train/val/test)")
    if args.window_length is not None:
        for flag, v in (("--align", args.align), ("--window", args.window), ("--condition-col", args.condition_col),
                        ("--split-col", args.split_col)):
            if v is not None:
                raise ConvertError(f"--window-length: cuts the whole recording, so {flag} (a trials option) "
                                   f"cannot be used with it")
        if not args.window_length >= bs:
            raise ConvertError(f"--window-length {args.window_length:g}: must be at least one bin ({bs:g} s)")
    try:
        f = h5py.File(args.input, "r")
    except OSError as e:
        raise ConvertError(f"input: cannot open NWB file '{args.input}': {e}")
    out_extra = {}
    with f:
        for path in ("units/spike_times", "units/spike_times_index"):
            if path not in f:
                raise ConvertError(f"input: NWB file has no /{path}")
        spikes = f["units/spike_times"][()].astype(np.float64)
        index = f["units/spike_times_index"][()].astype(np.int64).ravel()
        if index.size == 0 or np.any(np.diff(np.concatenate([[0], index])) < 0) or index[-1] != spikes.size:
            raise ConvertError("/units/spike_times_index: must be non-decreasing and end at len(spike_times)")
        if not np.all(np.isfinite(spikes)):
            raise ConvertError(f"/units/spike_times: NaN or Inf at index {int(np.flatnonzero(~np.isfinite(spikes))[0])}")
        if "units/id" in f:
            ids = f["units/id"][()].ravel()
            if ids.size != index.size:
                raise ConvertError(f"/units/id: {ids.size} ids for {index.size} units")
            out_extra["channel_ids"] = ids.astype(np.int64)
        units = [np.sort(u) for u in np.split(spikes, index[:-1])]
        has_trials = "intervals/trials/start_time" in f
        if args.window_length is None and not has_trials:
            raise ConvertError("input: NWB file has no /intervals/trials; pass --window-length S to cut the "
                               "recording into windows of S seconds")
        series = [(name, *nwb_series_values(name, g))
                  for name, g in nwb_pick_behavior(nwb_behavior_series(f), args.behavior)]
        if args.window_length is not None:
            begins, nbins, names = nwb_fixed_windows(spikes, series, args.window_length, bs)
            condition = None
        else:
            begins, nbins, names, condition = nwb_trial_windows(f, args, bs, out_extra)
    counts = bin_spikes(units, begins, nbins, bs)
    offsets = np.concatenate([[0], np.cumsum(nbins)]).astype(np.int64)
    behavior, labels = nwb_resample(series, begins, nbins, offsets, names, bs) if series else (None, None)
    out = assemble(counts, offsets=offsets, behavior=behavior, condition=condition, label="units")
    out.update(out_extra)
    if labels:
        out["behavior_columns"] = labels
    return out


READERS = {"npy": read_npy, "npz": read_npz, "mat": read_mat, "csv": read_csv, "nwb": read_nwb}


# ---- writing and validation -----------------------------------------------------------


def is_counts(a):
    return a.dtype.kind in "iu" and (a.size == 0 or a.min() >= 0) or (
        a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a >= 0) and np.all(a == np.round(a)))


def write(out, args):
    data = np.asarray(out["data"])
    if data.dtype.kind not in "iuf":
        raise ConvertError(f"data: not numeric (dtype {data.dtype})")
    mask = None
    if getattr(args, "mask_nan", False) and data.dtype.kind == "f":
        missing = np.isnan(data)
        if missing.any():
            mask = (~missing).astype(np.uint8)
            data = np.where(missing, 0.0, data)
    bad = np.argwhere(~np.isfinite(data.astype(np.float64)))
    if bad.size:
        r, c = int(bad[0][0]), int(bad[0][1])
        hint = "" if getattr(args, "mask_nan", False) or not np.isnan(data[r, c]) else \
            " (--mask-nan marks NaN entries as missing)"
        raise ConvertError(f"data: NaN or Inf at row {r}, column {c}{hint}")
    observation = args.observation or ("poisson" if is_counts(data) else "gaussian")
    if observation == "poisson" and not is_counts(data):
        raise ConvertError("data: --observation poisson needs non-negative integer counts")
    dtype = {"float32": np.float32, "float64": np.float64, "int32": np.int32}.get(args.dtype)
    if dtype is None:
        dtype = np.int32 if data.dtype.kind in "iu" else np.float64
    if np.dtype(dtype).kind == "i" and not is_counts(data):
        raise ConvertError("data: --dtype int32 needs integer values")
    labels = None
    if "condition" in out:
        out["condition"], labels = condition_to_int(out["condition"])
    tmp = args.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("data", data=data.astype(dtype))
        f.create_dataset("trial_offsets", data=np.asarray(out["offsets"], dtype=np.int64))
        if mask is not None:
            f.create_dataset("mask", data=mask)
        for key in ("inputs", "behavior"):
            if key in out:
                f.create_dataset(key, data=np.asarray(out[key], dtype=np.float64))
        if "condition" in out:
            f.create_dataset("trial_condition", data=out["condition"].astype(np.int64))
        for key in ("channel_ids", "trial_ids"):
            if key in out:
                f.create_dataset(key, data=np.asarray(out[key], dtype=np.int64))
        if "trial_split" in out:
            f.create_dataset("trial_split", data=[str(x) for x in out["trial_split"]], dtype=h5py.string_dtype())
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["bin_size_s"] = np.float64(args.bin_size)
        f.attrs["observation"] = observation
        f.attrs["description"] = args.description or f"converted from {os.path.basename(args.input)} ({args.format})"
        if labels is not None:
            f.attrs["condition_labels"] = labels
        if "behavior_columns" in out:
            f.attrs["behavior_columns"] = out["behavior_columns"]
    os.replace(tmp, args.out)
    return validate(args.out)


def validate(path):
    """Re-open the written file and check the contract; return a summary dict."""
    with h5py.File(path, "r") as f:
        data, off = f["data"][()], f["trial_offsets"][()]
        if data.ndim != 2:
            raise ConvertError(f"{path}: /data is not 2-D")
        if off.dtype != np.int64 or off[0] != 0 or off[-1] != data.shape[0]:
            raise ConvertError(f"{path}: /trial_offsets must be int64 from 0 to {data.shape[0]}")
        d = np.diff(off)
        if np.any(d <= 0):
            raise ConvertError(f"{path}: /trial_offsets not strictly increasing at index {int(np.argmax(d <= 0)) + 1}")
        if not np.all(np.isfinite(data)):
            raise ConvertError(f"{path}: /data has NaN/Inf")
        for key in ("inputs", "behavior"):
            if key in f and (f[key].ndim != 2 or f[key].shape[0] != data.shape[0] or
                             not np.all(np.isfinite(f[key][()]))):
                raise ConvertError(f"{path}: /{key} must be [total_bins, D] and finite")
        for key, n in (("trial_condition", off.size - 1), ("trial_ids", off.size - 1), ("trial_split", off.size - 1),
                       ("channel_ids", data.shape[1])):
            if key in f and f[key].shape != (n,):
                raise ConvertError(f"{path}: /{key} must have {n} entries, has shape {f[key].shape}")
        if "behavior_columns" in f.attrs and ("behavior" not in f or
                                              len(f.attrs["behavior_columns"]) != f["behavior"].shape[1]):
            raise ConvertError(f"{path}: the behavior_columns attribute must name every column of /behavior")
        if f.attrs["observation"] == "poisson" and not is_counts(data):
            raise ConvertError(f"{path}: poisson data must be non-negative integer counts")
        missing = {}
        if "mask" in f:
            mask = f["mask"][()]
            if mask.shape != data.shape or mask.dtype != np.uint8 or np.any(mask > 1):
                raise ConvertError(f"{path}: /mask must be uint8 0/1 with /data's shape {data.shape}")
            if np.any(data[mask == 0] != 0):
                raise ConvertError(f"{path}: /data must be 0 where /mask is 0")
            missing = {"entries": int((mask == 0).sum()),
                       "channels": [int(j) for j in np.flatnonzero(~mask.any(axis=0))],
                       "trials": [k for k in range(off.size - 1) if not mask[off[k]:off[k + 1]].any()]}
        return {"missing": missing,"trials": off.size - 1, "bins": data.shape[0], "channels": data.shape[1],
                "min_len": int(d.min()), "max_len": int(d.max()), "observation": f.attrs["observation"],
                "dtype": str(data.dtype),
                "behavior_columns": [str(x) for x in f.attrs.get("behavior_columns", [])],
                "optional": [k for k in ("mask", "inputs", "behavior", "trial_condition", "trial_split", "channel_ids")
                             if k in f]}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="convert.py", description=__doc__.split("\n\n")[0],
                                epilog="See the module docstring for the per-format rules.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("format", choices=sorted(READERS), help="input format")
    p.add_argument("input", help="input file")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--bin-size", type=float, required=True, help="bin width in seconds (the bin_size_s attribute)")
    p.add_argument("--observation", choices=["gaussian", "poisson"], help="default: poisson for counts")
    p.add_argument("--description", help="free text for the description attribute")
    p.add_argument("--dtype", choices=["float32", "float64", "int32"], help="dtype of /data")
    p.add_argument("--layout", help="npy, npz, mat: order of the axes of a 3-D array, default trials,time,channels "
                                    "(e.g. channels,time,trials); of each 2-D matrix or MATLAB cell, default "
                                    "time,channels. Giving it also confirms a shape with more channels than bins")
    p.add_argument("--trim-nan", action="store_true",
                   help="3-D data: drop each trial's trailing all-NaN bins (NaN-padded trials)")
    p.add_argument("--mask-nan", action="store_true",
                   help="NaN entries inside trials (after --trim-nan) become missing: /data 0 and /mask 0 there "
                        "(/mask: uint8, 1 = observed), instead of an error")
    g = p.add_argument_group("npy")
    g.add_argument("--trial-ids", help="npy: .npy with one trial id per row of 2-D data")
    g.add_argument("--offsets", help="npy: .npy with trial offsets for 2-D data")
    g.add_argument("--inputs", help="npy: .npy inputs array laid out like the data")
    g.add_argument("--condition", help="npy: .npy condition labels (per trial, or per row with trial ids)")
    g = p.add_argument_group("npz and mat: variable names")
    g.add_argument("--data-key", default="data")
    g.add_argument("--trial-key", default="trial_ids")
    g.add_argument("--offsets-key", default="offsets")
    g.add_argument("--behavior-key", default="behavior")
    g.add_argument("--inputs-key", default="inputs")
    g.add_argument("--condition-key", default="condition")
    g = p.add_argument_group("csv")
    g.add_argument("--trial-col", default="0", help="trial-id column (name or 0-based index)")
    g.add_argument("--ignore-cols", help="comma-separated columns to drop")
    g.add_argument("--delimiter", default=",")
    g = p.add_argument_group("csv and nwb")
    g.add_argument("--condition-col", help="condition column (csv: name/index; nwb: /intervals/trials column)")
    g = p.add_argument_group("npy and nwb")
    g.add_argument("--behavior", metavar="FILE | NAME[,NAME]",
                   help="npy: .npy behaviour array laid out like the data. nwb: the series under "
                        "/processing/behavior to resample to the bin centres into /behavior, by path below it "
                        "(e.g. Position/hand) or by the series' own name; default: every TimeSeries and "
                        "SpatialSeries found there (the summary line names them)")
    g = p.add_argument_group("nwb")
    g.add_argument("--align", metavar="EVENT",
                   help="a trials column of event times (e.g. move_onset_time); each trial becomes the bins of "
                        "[EVENT + W0, EVENT + W1) (needs --window). Default: start_time when --window is given")
    g.add_argument("--window", nargs=2, type=float, metavar=("W0", "W1"),
                   help="seconds around the --align event, e.g. --window -0.25 0.45; without --window a trial "
                        "is [start_time, stop_time)")
    g.add_argument("--split-col", help="trials column naming each trial's split (NLB: split, with train/val/test); "
                                       "written to /trial_split")
    g.add_argument("--splits", help="keep only the trials whose --split-col value is listed, e.g. train,val")
    g.add_argument("--window-length", type=float, metavar="S",
                   help="no trials table (or ignore it): cut the recording into consecutive windows of S seconds")
    args = p.parse_args(argv)
    if args.bin_size <= 0:
        p.error("--bin-size must be positive")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if not os.path.exists(args.input):
            raise ConvertError(f"input: no such file '{args.input}'")
        if args.format != "nwb":
            for flag, v in (("--align", args.align), ("--window", args.window), ("--split-col", args.split_col),
                            ("--splits", args.splits), ("--window-length", args.window_length)):
                if v is not None:
                    raise ConvertError(f"{flag}: only for nwb input (the {args.format} reader has no trials table)")
        out = READERS[args.format](args)
        folder = os.path.dirname(os.path.abspath(args.out))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise ConvertError(f"--out: cannot create folder '{folder}': {e.strerror}")
        try:
            s = write(out, args)
        except OSError as e:
            raise ConvertError(f"--out: cannot write '{args.out}': {e.strerror or e}")
    except ConvertError as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a promise: one line and exit 2, never a traceback
        print(f"convert.py: error: {args.input}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {s['trials']} trials, {s['bins']} bins, {s['channels']} channels "
          f"({s['dtype']}), trial length {s['min_len']}..{s['max_len']} bins, observation {s['observation']}, "
          f"bin {args.bin_size:g} s" + (f", with {', '.join(s['optional'])}" if s["optional"] else "") +
          (f"; behavior columns {', '.join(s['behavior_columns'])}" if s["behavior_columns"] else ""))
    miss = s["missing"]
    if miss:
        print(f"/mask: {miss['entries']} missing entries (NaN) of {s['bins'] * s['channels']}"
              + (f"; channels with no observed entry: {', '.join(map(str, miss['channels']))}"
                 if miss["channels"] else "")
              + (f"; trials with no observed entry: {', '.join(map(str, miss['trials']))}" if miss["trials"] else ""))
    elif args.mask_nan:
        print("--mask-nan: no NaN inside the trials, so no /mask")
    return 0


if __name__ == "__main__":
    sys.exit(main())
