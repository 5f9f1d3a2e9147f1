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
