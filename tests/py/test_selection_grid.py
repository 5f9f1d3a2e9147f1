"""tests/bench/selection_grid.py: the design has at least 40 ground truths,
every SNR level, observation model and size in both halves, the halves
split by seed parity, each truth's K window around its true K; the scoring
counts exact (K, partition), signed K error and multi-group answers the way
docs/selection.md says; the report reads sweep results files written here
with h5py and prints the right table, and lists truths not run.
"""
import os
import subprocess
import sys

import pytest

h5py = pytest.importorskip("h5py")

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("FACRNN_SRC", os.path.normpath(os.path.join(HERE, "..", "..")))
SCRIPT = os.path.join(SRC, "tests", "bench", "selection_grid.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import selection_grid as sg  # noqa: E402


def test_design():
    rows = sg.design()
    assert len(rows) >= 40
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["seed"] for r in rows}) == len(rows)
    for r in rows:
        assert r["half"] == ("report" if r["seed"] % 2 else "tune")
        ks = [int(k) for k in r["ranks"].split(",")]
        assert r["K"] in ks and max(ks) == r["K"] + 1
        assert sum(int(g) for g in r["groups"].split("+")) == r["K"]
    for half in ("report", "tune"):
        h = [r for r in rows if r["half"] == half]
        assert len(h) >= 20
        for level, _ in sg.SNRS:
            hl = [r for r in h if r["snr_level"] == level]
            assert {r["obs"] for r in hl} == {"gaussian", "poisson"}
            assert {(r["N"], r["trials"]) for r in hl} == set(sg.CELLS)
            assert {r["kind"] for r in hl} >= {"independent", "coupled"}
    kinds = {r["kind"] for r in rows}
    assert kinds == {"independent", "coupled", "single", "noise"}
    shapes = {r["groups"] for r in rows if r["kind"] == "independent"}
    assert shapes == {"2+1", "2+2", "3+2", "2+2+2", "3+1+1"}


def test_score():
    ind = {"kind": "independent", "K": 5, "groups": "3+1+1"}
    assert sg.score(ind, (5, [1, 1, 3], "1+1+3")) == (True, 0, True)
    assert sg.score(ind, (5, [2, 3], "3+2")) == (False, 0, True)
    assert sg.score(ind, (6, [1, 2, 3], "3+2+1")) == (False, 1, True)
    cpl = {"kind": "coupled", "K": 4, "groups": "4"}
    assert sg.score(cpl, (4, [4], "4")) == (True, 0, False)
    assert sg.score(cpl, (3, [3], "3")) == (False, -1, False)
    assert sg.score(cpl, (4, [2, 2], "2+2")) == (False, 0, True)
    noise = {"kind": "noise", "K": 3, "groups": "3"}
    assert sg.score(noise, (2, [2], "2")) == (True, None, False)
    assert sg.score(noise, (4, [2, 2], "2+2")) == (False, None, True)


def fake_sweep(path, K, groups):
    with h5py.File(path, "w") as f:
        g = f.create_group("sweep/selection")
        g.attrs["selected_K"] = K
        g.attrs["selected_groups"] = groups


def test_report(tmp_path):
    rows = [r for r in sg.design() if r["half"] == "report"]
    pick = {}
    for r in rows:  # one truth of each kind at the high SNR level
        if r["snr_level"] == "high" and r["kind"] not in pick:
            pick[r["kind"]] = r
    assert set(pick) == {"independent", "coupled", "single", "noise"}
    lines = ["id\trc\twall_s\tload_before\tload_after"]
    for kind, r in pick.items():
        if kind == "independent":
            fake_sweep(tmp_path / (r["id"] + ".sweep.h5"), r["K"], r["groups"])  # right
        elif kind == "coupled":
            fake_sweep(tmp_path / (r["id"] + ".sweep.h5"), r["K"], "%d+%d" % (r["K"] - 1, 1))  # split: wrong
        else:  # one group at K + 1: wrong for the single system, right for the noise null
            fake_sweep(tmp_path / (r["id"] + ".sweep.h5"), r["K"] + 1, str(r["K"] + 1))
        lines.append("%s\t0\t10.0\t1/1/1\t2/2/2" % r["id"])
    (tmp_path / "runs.tsv").write_text("\n".join(lines) + "\n")
    out = subprocess.run(["/usr/bin/python3", SCRIPT, "report", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    high = [l for l in out.stdout.splitlines() if l.startswith("| high")][0]
    cells = [c.strip() for c in high.strip("|").split("|")]
    # SNR, truths run, exact (3 scored: noise is not), K error, multi-group on
    # coupled/null (3: coupled, single, noise), noise null one group
    assert cells[1:] == ["4", "1/3 = 33%", "+0.33; +0..+1", "1/3 = 33%", "1/1 = 100%"]
    assert "not run:" in out.stdout
    assert "sweep wall time in all: 40 s" in out.stdout


def test_bad_half():
    out = subprocess.run(["/usr/bin/python3", SCRIPT, "report", "/nonexistent", "odd"], capture_output=True, text=True)
    assert out.returncode == 2 and "half must be" in out.stderr and "Traceback" not in out.stderr


def _rows(K, groups, nll, ind, coup, pred, beta=20.0):
    """Three folds of one configuration, the same evidence at every horizon."""
    return [{"K": K, "groups": groups, "beta": beta, "seed": 0, "fold": f, "nll": nll + 0.01 * f,
             "objective": nll, "ind": ind, "coup": {str(l): coup for l in sg.TUNE_LAGS},
             "pred": {str(l): pred for l in sg.TUNE_LAGS}} for f in range(3)]


def test_apply_rule():
    base = _rows(4, "4", 1.00, float("nan"), 0.0, float("nan"))
    # independent, uncoupled, predictable: the split wins
    assert sg.apply_rule(base + _rows(4, "2+2", 1.20, 0.6, 0.01, 0.7)) == (4, "2+2")
    # each test alone rejects it
    assert sg.apply_rule(base + _rows(4, "2+2", 1.20, 0.1, 0.01, 0.7)) == (4, "4")
    assert sg.apply_rule(base + _rows(4, "2+2", 1.20, 0.6, 0.30, 0.7)) == (4, "4")
    assert sg.apply_rule(base + _rows(4, "2+2", 1.20, 0.6, 0.01, 0.05)) == (4, "4")
    # the coupling is the worst horizon of the rule's lags
    r = _rows(4, "2+2", 1.20, 0.6, 0.01, 0.7)
    for x in r:
        x["coup"]["4"] = 0.5
    assert sg.apply_rule(base + r) == (4, "4")
    assert sg.apply_rule(base + r, lags=(1,)) == (4, "2+2")
    # K: the smallest within one SE of the best
    assert sg.apply_rule(base + _rows(5, "5", 0.995, float("nan"), 0.0, float("nan")))[0] == 4
    assert sg.apply_rule(base + _rows(5, "5", 0.5, float("nan"), 0.0, float("nan")))[0] == 5


def test_run_evidence():
    """Two independent noisy rotations are uncoupled and predictable; white
    noise latents are not predictable; a driven pair is coupled."""
    import numpy as np
    rng = np.random.default_rng(1)
    T, B = 30, 80
    off = np.arange(T + 1) * B

    def sim(drive):
        lat = np.zeros((T * B, 4))
        for k in range(T):
            z = rng.standard_normal(4)
            for t in range(B):
                lat[k * B + t] = z
                w1, w2 = 2 * np.pi / 8, 2 * np.pi / 13
                n = np.array([np.cos(w1) * z[0] - np.sin(w1) * z[1], np.sin(w1) * z[0] + np.cos(w1) * z[1],
                              np.cos(w2) * z[2] - np.sin(w2) * z[3] + drive * np.tanh(z[0]),
                              np.sin(w2) * z[2] + np.cos(w2) * z[3]])
                z = 0.9 * n + 0.3 * rng.standard_normal(4)
            lat[k * B] = np.nan
        return lat

    tr = np.arange(T) % 3 != 0
    ev = sg.run_evidence(sim(0.0), off, tr, [2, 2])
    assert all(ev[l][0] < 0.05 for l in ev) and ev[1][1] > 0.5
    assert sg.run_evidence(sim(0.8), off, tr, [2, 2])[1][0] > 0.2
    noise = rng.standard_normal((T * B, 4))
    assert sg.run_evidence(noise, off, tr, [2, 2])[1][1] < 0.05
