"""Tests for `convert.py nwb`: files written here in the NWB 2.x HDF5 layout
(units with ragged spike times and ids, a trials table with a NaN stop_time,
an event column, text conditions and an NLB split column, behaviour under
processing/behavior), converted, and every array checked bin by bin against
an independent NumPy/SciPy computation; every refusal with its exact line."""
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from scipy.interpolate import interp1d

SRC = os.environ.get("FACRNN_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
CONVERT = os.path.join(SRC, "postprocess", "convert.py")

UNIT_IDS = np.array([11, 42, 7])
TRIAL_IDS = np.array([10, 11, 12, 13, 14])
START = np.array([0.5, 2.0, 3.5, 5.0, 7.0])
STOP = np.array([1.5, np.nan, 4.6, 6.2, 8.0])  # trial 1 (id 11) has no stop_time
MOVE = np.array([0.83, 2.41, 3.97, 5.52, 7.36])
COND = ["left", "right", "left", "up", "right"]
SPLIT = ["train", "val", "test", "train", "val"]
T_SPIKES = (0.0, 9.5)


def spike_trains():
    rng = np.random.default_rng(18)
    trains = [np.sort(rng.uniform(*T_SPIKES, size=n)) for n in (400, 150, 60)]
    trains[1] = trains[1][::-1].copy()  # stored out of order: the converter sorts
    return trains


def hand(t):
    """Hand position (x, y): a smooth, non-linear curve and a linear one."""
    return np.stack([np.sin(2.0 * t) + 0.1 * t, 3.0 * t - 1.0], axis=1)


def vlen(values):
    return np.array(values, dtype=h5py.string_dtype())


def dyn_table(g, kind, description):
    g.attrs["neurodata_type"] = kind
    g.attrs["namespace"] = "core"
    g.attrs["description"] = description


def column(g, name, data, dtype=None):
    d = g.create_dataset(name, data=data, dtype=dtype)
    d.attrs["neurodata_type"] = "VectorData"
    d.attrs["description"] = name
    return d


def make_nwb(path, trials=True, behavior=True):
    """An NWB 2.x layout, as pynwb writes it (attributes included)."""
    trains = spike_trains()
    with h5py.File(path, "w") as f:
        f.attrs["nwb_version"] = "2.6.0"
        f.attrs["neurodata_type"] = "NWBFile"
        u = f.create_group("units")
        dyn_table(u, "Units", "sorted units")
        u.attrs["colnames"] = vlen(["spike_times"])
        u.create_dataset("id", data=UNIT_IDS).attrs["neurodata_type"] = "ElementIdentifiers"
        column(u, "spike_times", np.concatenate(trains))
        ix = u.create_dataset("spike_times_index", data=np.cumsum([t.size for t in trains]))
        ix.attrs["neurodata_type"] = "VectorIndex"
        if trials:
            t = f.create_group("intervals/trials")
            dyn_table(t, "TimeIntervals", "trials")
            t.attrs["colnames"] = vlen(["start_time", "stop_time", "move_onset_time", "condition", "split"])
            t.create_dataset("id", data=TRIAL_IDS).attrs["neurodata_type"] = "ElementIdentifiers"
            column(t, "start_time", START)
            column(t, "stop_time", STOP)
            column(t, "move_onset_time", MOVE)
            column(t, "condition", vlen(COND))
            column(t, "split", vlen(SPLIT))
            column(t, "go_cue_time", MOVE - 0.3)
            column(t, "go_cue_time_bad", np.array([0.2, 1.7, np.nan, 4.7, 6.8]))
            column(t, "targets", np.arange(7.0))  # a ragged column: several values per trial
            t.create_dataset("targets_index", data=np.array([1, 2, 4, 5, 7])).attrs["neurodata_type"] = "VectorIndex"
        if behavior:
            m = f.create_group("processing/behavior")
            m.attrs["neurodata_type"] = "ProcessingModule"
            pos = m.create_group("Position")
            pos.attrs["neurodata_type"] = "Position"
            s = pos.create_group("hand")
            s.attrs["neurodata_type"] = "SpatialSeries"
            ts = np.arange(0.0, 9.0, 0.004) + 0.001 * np.sin(np.arange(2250.0))  # irregular samples
            d = s.create_dataset("data", data=hand(ts))
            d.attrs["unit"], d.attrs["conversion"] = "m", 1.0
            s.create_dataset("timestamps", data=ts)
            v = m.create_group("hand_vel")  # a series straight in the module, sampled at a rate
            v.attrs["neurodata_type"] = "TimeSeries"
            d = v.create_dataset("data", data=np.arange(900.0) * 2.0)  # 2 units per sample; x conversion 0.5
            d.attrs["conversion"], d.attrs["unit"] = 0.5, "m/s"
            st = v.create_dataset("starting_time", data=0.2)
            st.attrs["rate"], st.attrs["unit"] = 100.0, "seconds"
            e = m.create_group("BehavioralEpochs/running")  # not a TimeSeries: skipped
            e.attrs["neurodata_type"] = "IntervalSeries"
            e.create_dataset("data", data=np.array([1, -1], dtype=np.int8))
            e.create_dataset("timestamps", data=np.array([1.0, 2.0]))
    return trains


def run(*args, ok=True):
    p = subprocess.run([sys.executable, CONVERT, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def err_line(p):
    assert p.returncode == 2, p.stdout + p.stderr
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    return p.stderr.rstrip("\n")


def load(path):
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in f.keys()}
        out["attrs"] = dict(f.attrs)
    return out


def expected_counts(trains, begin, nbins, bs):
    """Bin each spike on its own: bin j of a window starting at `begin` holds
    the spikes with floor((t - begin) / bs) == j (an independent path from
    the converter's searchsorted over bin edges)."""
    out = np.zeros((nbins, len(trains)), dtype=np.int64)
    for u, st in enumerate(trains):
        j = np.floor((st - begin) / bs).astype(np.int64)
        j = j[(j >= 0) & (j < nbins)]
        np.add.at(out[:, u], j, 1)
    return out


def test_aligned_window_splits_conditions_behavior(tmp_path):
    trains = make_nwb(tmp_path / "s.nwb")
    bs, w0, w1 = 0.02, -0.25, 0.45
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", bs, "--align", "move_onset_time",
            "--window", w0, w1, "--condition-col", "condition", "--split-col", "split", "--splits", "train,val",
            "--behavior", "Position/hand")
    o = load(tmp_path / "o.h5")
    keep = [0, 1, 3, 4]  # trial 2 is "test"; trial 1's NaN stop_time does not matter when aligned
    nb = 35  # 0.70 s / 0.02 s
    np.testing.assert_array_equal(o["trial_offsets"], np.arange(len(keep) + 1) * nb)
    want = np.concatenate([expected_counts(trains, MOVE[k] + w0, nb, bs) for k in keep])
    assert want.sum() > 50  # the check means something
    np.testing.assert_array_equal(o["data"], want)
    assert o["data"].dtype == np.int32 and o["attrs"]["observation"] == "poisson"
    np.testing.assert_array_equal(o["channel_ids"], UNIT_IDS)
    np.testing.assert_array_equal(o["trial_ids"], TRIAL_IDS[keep])
    assert [s.decode() for s in o["trial_split"]] == ["train", "val", "train", "val"]
    assert list(o["attrs"]["condition_labels"]) == ["left", "right", "up"]
    np.testing.assert_array_equal(o["trial_condition"], [0, 1, 2, 1])  # left, right, up, right
    # Behaviour: linear interpolation of the samples at the bin centres.
    with h5py.File(tmp_path / "s.nwb", "r") as f:
        ts, xy = f["processing/behavior/Position/hand/timestamps"][()], f["processing/behavior/Position/hand/data"][()]
    centres = np.concatenate([MOVE[k] + w0 + bs * (np.arange(nb) + 0.5) for k in keep])
    np.testing.assert_allclose(o["behavior"], interp1d(ts, xy, axis=0)(centres), rtol=0, atol=1e-12)
    np.testing.assert_allclose(o["behavior"][:, 1], 3.0 * centres - 1.0, rtol=0, atol=1e-12)  # linear: exact
    assert list(o["attrs"]["behavior_columns"]) == ["Position/hand[0]", "Position/hand[1]"]
    assert p.stdout.rstrip("\n").endswith("; behavior columns Position/hand[0], Position/hand[1]")
    assert "4 trials, 140 bins, 3 channels" in p.stdout


def test_start_stop_trials_nan_stop_and_default_behavior(tmp_path):
    trains = make_nwb(tmp_path / "s.nwb")
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, ok=False)
    assert err_line(p) == ("convert.py: error: /intervals/trials: trial 1 (id 11) has stop_time nan; pass "
                           "--align EVENT --window W0 W1 for fixed windows around an event")
    assert not (tmp_path / "o.h5").exists()
    # Leaving the NaN trial out (it is "val") gives [start_time, stop_time) trials; every series by default.
    bs = 0.1
    run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", bs, "--split-col", "split",
        "--splits", "train,test")
    o = load(tmp_path / "o.h5")
    keep = [0, 2, 3]
    nbins = [10, 11, 12]  # 1.0 s, 1.1 s, 1.2 s
    np.testing.assert_array_equal(o["trial_offsets"], np.concatenate([[0], np.cumsum(nbins)]))
    want = np.concatenate([expected_counts(trains, START[k], n, bs) for k, n in zip(keep, nbins)])
    np.testing.assert_array_equal(o["data"], want)
    np.testing.assert_array_equal(o["trial_ids"], TRIAL_IDS[keep])
    assert [s.decode() for s in o["trial_split"]] == ["train", "test", "train"]
    assert list(o["attrs"]["behavior_columns"]) == ["Position/hand[0]", "Position/hand[1]", "hand_vel[0]"]
    centres = np.concatenate([START[k] + bs * (np.arange(n) + 0.5) for k, n in zip(keep, nbins)])
    np.testing.assert_allclose(o["behavior"][:, 1], 3.0 * centres - 1.0, rtol=0, atol=1e-12)
    # hand_vel: sample i at 0.2 + i / 100 s holds 2 i, times the conversion 0.5 -> (t - 0.2) * 100
    np.testing.assert_allclose(o["behavior"][:, 2], (centres - 0.2) * 100.0, rtol=0, atol=1e-9)
    assert "trial_condition" not in o
    # --window without --align: fixed windows from start_time, so the NaN stop_time no longer matters.
    run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "w.h5", "--bin-size", bs, "--window", 0, 0.8,
        "--behavior", "hand")
    o = load(tmp_path / "w.h5")
    np.testing.assert_array_equal(o["trial_offsets"], np.arange(6) * 8)
    np.testing.assert_array_equal(o["data"], np.concatenate([expected_counts(trains, s, 8, bs) for s in START]))
    np.testing.assert_array_equal(o["trial_ids"], TRIAL_IDS)
    assert "trial_split" not in o


def test_no_trials_window_length(tmp_path):
    trains = make_nwb(tmp_path / "s.nwb", trials=False)
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.05, ok=False)
    assert err_line(p) == ("convert.py: error: input: NWB file has no /intervals/trials; pass --window-length S "
                           "to cut the recording into windows of S seconds")
    bs = 0.05
    run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", bs, "--window-length", 1.0)
    o = load(tmp_path / "o.h5")
    # The span every source covers: from the first spike (hand_vel starts at 0.2 s and hand at 0 s:
    # the later start wins) to the end of the shortest series (hand_vel ends at 0.2 + 899 / 100 s).
    t0 = max(min(t.min() for t in trains), 0.2)
    with h5py.File(tmp_path / "s.nwb", "r") as f:
        t_end = min(max(t.max() for t in trains), f["processing/behavior/Position/hand/timestamps"][-1], 0.2 + 8.99)
    n_win = int(np.floor((t_end - t0) / 1.0))
    assert n_win == 8
    np.testing.assert_array_equal(o["trial_offsets"], np.arange(n_win + 1) * 20)
    want = np.concatenate([expected_counts(trains, t0 + k * 1.0, 20, bs) for k in range(n_win)])
    np.testing.assert_array_equal(o["data"], want)
    assert "trial_ids" not in o and "trial_condition" not in o
    np.testing.assert_array_equal(o["channel_ids"], UNIT_IDS)
    centres = np.concatenate([t0 + k * 1.0 + bs * (np.arange(20) + 0.5) for k in range(n_win)])
    np.testing.assert_allclose(o["behavior"][:, 1], 3.0 * centres - 1.0, rtol=0, atol=1e-12)


ERRORS = [
    (["--condition-col", "cond"],
     "--condition-col cond: no column 'cond' in /intervals/trials (it has: condition, go_cue_time, go_cue_time_bad, "
     "id, move_onset_time, split, start_time, stop_time, targets, targets_index)"),
    (["--align", "movement_onset", "--window", "-0.2", "0.4"],
     "--align movement_onset: no column 'movement_onset' in /intervals/trials (it has: condition, go_cue_time, "
     "go_cue_time_bad, id, move_onset_time, split, start_time, stop_time, targets, targets_index)"),
    (["--split-col", "partition", "--splits", "train"],
     "--split-col partition: no column 'partition' in /intervals/trials (it has: condition, go_cue_time, "
     "go_cue_time_bad, id, move_onset_time, split, start_time, stop_time, targets, targets_index)"),
    (["--condition-col", "targets", "--window", "0", "0.5"],
     "--condition-col targets: /intervals/trials/targets is a ragged column (several values per trial); one value "
     "per trial is needed"),
    (["--align", "move_onset_time"], "--align move_onset_time: needs --window W0 W1 (seconds around the event)"),
    (["--align", "move_onset_time", "--window", "0.4", "-0.2"], "--window 0.4 -0.2: the end must be after the start"),
    (["--align", "move_onset_time", "--window", "0", "0.05"], "--window 0 0.05: shorter than one bin of 0.1 s"),
    (["--align", "condition", "--window", "0", "0.5"],
     "--align condition: the column is not numbers (times in seconds)"),
    (["--align", "go_cue_time_bad", "--window", "0", "0.5"],
     "--align go_cue_time_bad: trial 2 (id 12) has no event time (nan)"),
    (["--splits", "train"], "--splits: needs --split-col (the trials column holding train/val/test)"),
    (["--split-col", "split", "--splits", "train,tset", "--window", "0", "0.5"],
     "--splits: no trial has split 'tset' (values: test, train, val)"),
    (["--window-length", "1", "--align", "move_onset_time", "--window", "0", "0.5"],
     "--window-length: cuts the whole recording, so --align (a trials option) cannot be used with it"),
    (["--window-length", "0.01"], "--window-length 0.01: must be at least one bin (0.1 s)"),
    (["--behavior", "eye", "--window", "0", "0.5"],
     "--behavior eye: not found under /processing/behavior (series: Position/hand, hand_vel)"),
    (["--behavior", "running", "--window", "0", "0.5"],
     "--behavior running: not found under /processing/behavior (series: Position/hand, hand_vel)"),
    (["--behavior", "hand", "--window", "0", "2.5"],
     "behavior Position/hand: trial 4 (id 14) has a bin centred at 9.05 s, outside its timestamps 0..8.99563 s "
     "(choose series with --behavior)"),
]


@pytest.mark.parametrize("extra,line", ERRORS, ids=[e[1].split(":")[0] + str(i) for i, e in enumerate(ERRORS)])
def test_refusals_are_one_line(tmp_path, extra, line):
    make_nwb(tmp_path / "s.nwb")
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, *extra, ok=False)
    assert err_line(p) == "convert.py: error: " + line
    assert not (tmp_path / "o.h5").exists()


def test_behavior_refusals(tmp_path):
    make_nwb(tmp_path / "s.nwb")
    with h5py.File(tmp_path / "s.nwb", "a") as f:
        d = f["processing/behavior/Position/hand/data"]
        d[137:139, 0] = np.nan  # the samples either side of 0.55 s, the first bin centre of trial 0
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 0.5, ok=False)
    assert err_line(p) == ("convert.py: error: behavior Position/hand: NaN near 0.55 s in trial 0 (id 10) "
                           "(choose series with --behavior)")
    with h5py.File(tmp_path / "s.nwb", "a") as f:
        ts = f["processing/behavior/Position/hand/timestamps"]
        ts[5] = ts[3]
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 0.5, ok=False)
    assert err_line(p) == "convert.py: error: behavior Position/hand: timestamps not increasing at sample 5"
    with h5py.File(tmp_path / "s.nwb", "a") as f:
        del f["processing/behavior/Position/hand/timestamps"]
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 0.5, ok=False)
    assert err_line(p) == "convert.py: error: behavior Position/hand: no timestamps and no starting_time with a rate"
    # Choosing the other series works around the broken one.
    run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 0.5,
        "--behavior", "hand_vel")


def test_units_refusals(tmp_path):
    make_nwb(tmp_path / "s.nwb")
    with h5py.File(tmp_path / "s.nwb", "a") as f:
        del f["units/id"]
        f["units/id"] = np.array([1, 2])
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 0.5, ok=False)
    assert err_line(p) == "convert.py: error: /units/id: 2 ids for 3 units"
    make_nwb(tmp_path / "t.nwb", behavior=False)
    with h5py.File(tmp_path / "t.nwb", "a") as f:
        del f["intervals/trials/stop_time"]
    p = run("nwb", tmp_path / "t.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, ok=False)
    assert err_line(p) == ("convert.py: error: input: NWB file has no /intervals/trials/stop_time; pass --window "
                           "W0 W1 (trials from start_time + W0 to start_time + W1)")
    p = run("nwb", tmp_path / "t.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--condition-col", "split",
            "--window", 0, 0.5)
    assert "5 trials, 25 bins, 3 channels" in p.stdout  # no behaviour module: no /behavior
    assert "behavior" not in load(tmp_path / "o.h5")


def test_facrnn_validates_nwb_output(tmp_path):
    binary = os.environ.get("FACRNN_BIN")
    if not binary or not os.path.exists(binary):
        pytest.skip("FACRNN_BIN not set")
    make_nwb(tmp_path / "s.nwb")
    run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 0.02, "--align", "move_onset_time",
        "--window", -0.25, 0.45, "--condition-col", "condition", "--split-col", "split")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    p = subprocess.run([binary, "info", str(tmp_path / "o.h5"), "--validate", "--lags", "3"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_nwb_options_refused_for_other_formats(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 2)))
    p = run("npy", tmp_path / "x.npy", "--out", tmp_path / "o.h5", "--bin-size", 0.1, "--window", 0, 1, ok=False)
    assert err_line(p) == "convert.py: error: --window: only for nwb input (the npy reader has no trials table)"


def test_trial_shorter_than_a_bin(tmp_path):
    make_nwb(tmp_path / "s.nwb")
    p = run("nwb", tmp_path / "s.nwb", "--out", tmp_path / "o.h5", "--bin-size", 1.05, ok=False)
    assert err_line(p) == ("convert.py: error: /intervals/trials: trial 0 (id 10, 0.5..1.5 s) is shorter than one "
                           "bin of 1.05 s")
