"""make_h5image_seeds.py: regenerate the seeds of fuzz_h5image (tests/fuzz/corpus/h5image).

Each seed is one options byte (see fuzz_h5image.c) followed by a small HDF5
input file: valid files with every optional part, and a few that break one
rule each, so the fuzzer starts from both the accepted and the refused paths.
Run with Debian's /usr/bin/python3 (h5py):  /usr/bin/python3 tests/fuzz/make_h5image_seeds.py
"""
import io
import os

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h5image")
T, BINS, N = 3, 4, 2  # trials, bins per trial, channels: tiny on purpose
R = T * BINS


def opts(lags=1, obs=0, inputs=0, behavior=0, truth=0):
    return bytes([lags | obs << 2 | inputs << 4 | behavior << 5 | truth << 6])


def image(parts, attrs):
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:  # default libver: the oldest format, no metadata checksums
        for name, value in parts.items():
            if isinstance(value, tuple):
                value, dattrs = value
            else:
                dattrs = {}
            d = f.create_dataset(name, data=value)
            for k, v in dattrs.items():
                d.attrs[k] = v
        for k, v in attrs.items():
            f.attrs[k] = v
    return buf.getvalue()


def base(counts=False, ints=False):
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, (R, N)).astype(np.float64) if counts else rng.normal(size=(R, N))
    if ints:
        x = x.astype(np.int32)
    return {"data": x, "trial_offsets": np.arange(0, R + 1, BINS, dtype=np.int64)}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(1)
    seeds = {}
    seeds["gaussian_min"] = opts() + image(base(), {})
    seeds["poisson_attr"] = opts(obs=0) + image(base(counts=True), {"observation": np.bytes_(b"poisson"), "format_version": 1,
                                                                    "bin_size_s": 0.01})
    seeds["poisson_int32"] = opts(obs=2) + image(base(counts=True, ints=True), {})
    full = base()
    full["inputs"] = rng.normal(size=(R, 1))
    full["behavior"] = rng.normal(size=(R, 1))
    full["trial_condition"] = np.array([0, 1, 0], dtype=np.int32)
    full["truth/latents"] = (rng.normal(size=(R, 3)), {"groups": np.array([2, 1], dtype=np.int32)})
    full["truth/A"] = rng.normal(size=(N, 3))
    full["truth/B"] = rng.normal(size=(3, N))
    full["truth/c"] = rng.normal(size=N)
    full["truth/d"] = rng.normal(size=3)
    seeds["gaussian_full"] = opts(lags=2, obs=1, inputs=1, behavior=1, truth=1) + image(full, {"observation": np.bytes_(b"gaussian")})
    seeds["full_noread"] = opts(lags=0) + image(full, {})
    bad = base()
    bad["trial_offsets"] = np.array([0, 4, 4, R], dtype=np.int64)
    seeds["bad_offsets"] = opts() + image(bad, {})
    bad = base()
    bad["data"][5, 1] = np.nan
    seeds["bad_nan"] = opts() + image(bad, {})
    bad = base(counts=True)
    bad["data"][2, 0] = 0.5
    seeds["bad_noninteger"] = opts(obs=2) + image(bad, {})
    bad = base()
    bad["truth/latents"] = (rng.normal(size=(R, 3)), {"groups": np.array([2, 2], dtype=np.int32)})
    seeds["bad_groups"] = opts(truth=1) + image(bad, {})
    bad = base()
    bad["inputs"] = rng.normal(size=(R - 1, 1))
    seeds["bad_inputs_rows"] = opts(inputs=1) + image(bad, {})
    seeds["bad_version"] = opts() + image(base(), {"format_version": 2, "observation": np.bytes_(b"binomial")})
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(blob)
        print(f"{name}: {len(blob)} bytes")


if __name__ == "__main__":
    main()
