#!/usr/bin/python3
"""prepare_monkey.py: turn the two monkey motor-cortex recordings into facrnn
input files (docs/formats.md, "Input"), through postprocess/convert.py.

The converter reads binned counts but cannot compute hand velocity from
position, cut a continuous session into windows or transform counts, so this
wrapper does that preprocessing, writes an .npz with the arrays named as
convert.py expects, and runs `convert.py npz` on it (the .npz is deleted
unless --keep-npz). The recordings themselves are never copied anywhere but
the --out file; do not commit or redistribute the outputs (they contain the
data).

Data sets (directory --src, default $FACRNN_REAL_DATA or ../shared/data/real
next to the repository root):

  bmi      bmi_center_out_8dir/monkey_{features,targets}_300.csv
           800 centre-out reaching trials (8 directions x 100), 98 units,
           20 ms bins. /data = spike counts (Poisson), or sqrt(counts)
           (Gaussian) with --transform sqrt. /behavior = hand velocity
           (x, y) in mm/s = np.gradient(position within the trial) / 0.02 s.
           /trial_condition = direction - 1 (0..7), so folds are stratified
           by direction. --trials N keeps the first N/8 trials of each
           direction (N a multiple of 8) for quick tests.
  stevenson
           stevenson2011_m1/m1_stevenson_2011.mat: 13 min continuous, 171
           units, 50 ms bins. Cut into consecutive non-overlapping windows of
           --window bins (default 20 = 1 s; the final partial window is
           dropped); each window is one trial. /behavior = handVel (x, y) in
           m/s. No conditions (folds are then plain contiguous-free random
           splits as the dataset module defines them). --drop-silent HZ drops
           units whose mean rate is below HZ (default 0: keep all 171).

Examples:
  postprocess/prepare_monkey.py bmi --out out/bmi_counts.h5
  postprocess/prepare_monkey.py bmi --transform sqrt --out out/bmi_sqrt.h5
  postprocess/prepare_monkey.py stevenson --window 20 --out out/stevenson_1s.h5
  postprocess/prepare_monkey.py bmi --trials 40 --out /tmp/bmi40.h5

Errors are one line on stderr with exit status 2.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert  # noqa: E402  (the converter next to this file)

BMI_BIN_S = 0.02
STEVENSON_BIN_S = 0.05


class PrepError(Exception):
    """A problem with the input or the options; reported as one line."""


def default_src():
    env = os.environ.get("FACRNN_REAL_DATA")
    if env:
        return env
    return os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "real"))


def load_bmi(src, trials=None):
    """Per-bin arrays of the centre-out data: counts (bins, 98) int,
    vel (bins, 2) mm/s, trial_ids (bins,), condition per trial (n_trials,)."""
    d = os.path.join(src, "bmi_center_out_8dir")
    fpath = os.path.join(d, "monkey_features_300.csv")
    tpath = os.path.join(d, "monkey_targets_300.csv")
    for p in (fpath, tpath):
        if not os.path.exists(p):
            raise PrepError(f"bmi: no such file '{p}'")
    F = np.loadtxt(fpath, delimiter=",")   # (bins, 98) counts
    T = np.loadtxt(tpath, delimiter=",")   # (bins, 5) = x, y, z (mm), direction 1..8, trial id 1..800
    if F.shape[0] != T.shape[0] or T.shape[1] != 5:
        raise PrepError(f"bmi: features have {F.shape[0]} rows, targets {T.shape} (expected same rows x 5)")
    counts = np.rint(F).astype(np.int64)
    if np.any(np.abs(F - counts) > 1e-9) or np.any(counts < 0):
        raise PrepError("bmi: features are not non-negative integer counts")
    tid = T[:, 4].astype(np.int64)
    direction = T[:, 3].astype(np.int64)
    # Rows come grouped by trial; check it so np.gradient never crosses trials.
    starts = np.flatnonzero(np.r_[True, tid[1:] != tid[:-1]])
    ids = tid[starts]
    if len(np.unique(ids)) != len(ids):
        raise PrepError("bmi: rows of a trial are not contiguous in monkey_targets_300.csv")
    offsets = np.r_[starts, len(tid)]
    cond = direction[starts] - 1            # (n_trials,) 0..7
    for k in range(len(ids)):
        if np.any(direction[offsets[k]:offsets[k + 1]] != direction[offsets[k]]):
            raise PrepError(f"bmi: direction changes within trial {ids[k]}")
    keep = np.arange(len(ids))
    if trials is not None:
        if trials < 8 or trials % 8:
            raise PrepError(f"--trials: {trials} is not a positive multiple of 8 (one share per direction)")
        keep = np.concatenate([np.flatnonzero(cond == c)[: trials // 8] for c in range(8)])
        keep.sort()
    X, V, C = [], [], []
    for k in keep:
        a, e = offsets[k], offsets[k + 1]
        pos = T[a:e, :2]                            # (T_k, 2) mm
        X.append(counts[a:e])
        V.append(np.gradient(pos, axis=0) / BMI_BIN_S)  # (T_k, 2) mm/s
        C.append(cond[k])
    lens = np.array([len(x) for x in X])
    return dict(data=np.concatenate(X), behavior=np.concatenate(V),
                offsets=np.r_[0, np.cumsum(lens)].astype(np.int64), condition=np.array(C, np.int64))


def load_stevenson(src, window, drop_silent_hz=0.0):
    """Windows of the continuous session: counts (bins, units), velocity
    (bins, 2) m/s, offsets of `window`-bin trials."""
    import scipy.io as sio
    p = os.path.join(src, "stevenson2011_m1", "m1_stevenson_2011.mat")
    if not os.path.exists(p):
        raise PrepError(f"stevenson: no such file '{p}'")
    m = sio.loadmat(p)
    Y = np.asarray(m["spikes"]).T.astype(np.int64)     # (bins, 171) counts per 50 ms
    vel = np.asarray(m["handVel"], float)[:2].T          # (bins, 2) m/s
    if Y.shape[0] != vel.shape[0]:
        raise PrepError(f"stevenson: spikes have {Y.shape[0]} bins, handVel {vel.shape[0]}")
    if window < 2:
        raise PrepError(f"--window: {window} bins is too short (need at least 2)")
    if drop_silent_hz > 0:
        rate = Y.mean(axis=0) / STEVENSON_BIN_S
        Y = Y[:, rate >= drop_silent_hz]
    n = Y.shape[0] // window
    if n < 1:
        raise PrepError(f"--window: {window} bins is longer than the session ({Y.shape[0]} bins)")
    rows = n * window
    return dict(data=Y[:rows], behavior=vel[:rows],
                offsets=np.arange(0, rows + 1, window, dtype=np.int64))


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring for the preprocessing.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["bmi", "stevenson"])
    ap.add_argument("--out", required=True, help="output HDF5 file")
    ap.add_argument("--src", default=None, help="folder with the recordings (default $FACRNN_REAL_DATA "
                    "or ../shared/data/real beside the repository)")
    ap.add_argument("--transform", choices=["counts", "sqrt"], default="counts",
                    help="counts (Poisson, default) or sqrt(counts) (Gaussian)")
    ap.add_argument("--trials", type=int, default=None, help="bmi: keep N trials, N/8 per direction")
    ap.add_argument("--window", type=int, default=20, help="stevenson: bins per trial window (default 20 = 1 s)")
    ap.add_argument("--drop-silent", type=float, default=0.0, help="stevenson: drop units below this rate (Hz)")
    ap.add_argument("--keep-npz", action="store_true", help="keep the intermediate .npz next to --out")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    src = args.src or default_src()
    try:
        if not os.path.isdir(src):
            raise PrepError(f"--src: no such folder '{src}' (set FACRNN_REAL_DATA)")
        if args.dataset == "bmi":
            arrs = load_bmi(src, args.trials)
            bin_s, desc = BMI_BIN_S, ("monkey motor cortex centre-out reaching (Shenoy lab, Stanford; Imperial "
                                      "College BMI course, C. Clopath), 98 units, 20 ms bins; behavior = hand "
                                      "velocity x, y (mm/s); condition = direction 0..7")
        else:
            arrs = load_stevenson(src, args.window, args.drop_silent)
            bin_s, desc = STEVENSON_BIN_S, (f"monkey M1 (Stevenson et al. 2011), 50 ms bins, continuous session "
                                            f"cut into {args.window}-bin windows; behavior = hand velocity "
                                            "x, y (m/s)")
    except PrepError as e:
        print(f"prepare_monkey.py: error: {e}", file=sys.stderr)
        return 2
    if args.transform == "sqrt":
        arrs["data"] = np.sqrt(arrs["data"].astype(np.float64))
        obs, desc = "gaussian", desc + "; data = sqrt(spike counts)"
    else:
        obs, desc = "poisson", desc + "; data = spike counts"
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, npz = tempfile.mkstemp(suffix=".npz", dir=out_dir)
    os.close(fd)
    try:
        np.savez(npz, **arrs)
        cargs = ["npz", npz, "--out", args.out, "--bin-size", repr(bin_s), "--observation", obs,
                 "--description", desc, "--offsets-key", "offsets", "--behavior-key", "behavior",
                 # concatenated bins x neurons: short reaching trials have fewer bins than neurons, which
                 # the converter refuses unless the layout is stated
                 "--layout", "time,channels"]
        if "condition" in arrs:
            cargs += ["--condition-key", "condition"]
        if args.transform == "counts":
            cargs += ["--dtype", "int32"]
        rc = convert.main(cargs)
    finally:
        if args.keep_npz:
            os.replace(npz, os.path.splitext(args.out)[0] + ".npz")
        elif os.path.exists(npz):
            os.remove(npz)
    return rc


if __name__ == "__main__":
    sys.exit(main())
