#!/usr/bin/python3
"""ref_train: the PyTorch speed baseline. Trains the reference model
(tests/reference/facrnn_ref.py, float64) the way a PyTorch user would:
autograd, torch.optim.AdamW, shuffled minibatches of 128 samples, one thread;
prints one JSON line with the measured steps per second.

The data are random (Gaussian activity or Poisson counts) in one long trial
of `samples + L` bins, so there are exactly `samples` training samples; the
history windows sigma(x_{t-l}) are precomputed once, as a user would with a
fixed kernel. Not part of the test suite.

--marks S1,S2,... also records the loop's elapsed time when step S (counted
from the first timed step) finishes, so one run of 65,000 steps also times
the first 40,000 for real.

Example: tests/bench/ref_train.py --N 100 --groups 3,3 --samples 20000 --steps 500
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import facrnn_ref as ref  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description="PyTorch reference training speed (steps/s)")
    p.add_argument("--N", type=int, default=20, help="channels")
    p.add_argument("--groups", default="3,3", help="group sizes, e.g. 3,2,1 (K is their sum)")
    p.add_argument("--samples", type=int, default=20000, help="number of training samples (n_train)")
    p.add_argument("--batch", type=int, default=128, help="minibatch size M")
    p.add_argument("--steps", type=int, default=200, help="timed optimiser steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    p.add_argument("--L", type=int, default=1, help="history lags (fixed uniform kernel)")
    p.add_argument("--D", type=int, default=0, help="input dimension")
    p.add_argument("--obs", default="gaussian", choices=sorted(ref.OBS))
    p.add_argument("--beta", type=float, default=20.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--marks", default="", help="comma-separated step counts at which to record the elapsed time")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    torch.manual_seed(a.seed)
    spec = ref.Spec(N=a.N, groups=[int(g) for g in a.groups.split(",")], D=a.D, L=a.L, obs=a.obs,
                    beta=a.beta, n_train=a.samples)
    T = a.samples + a.L
    if a.obs == "poisson":
        data = torch.poisson(torch.full((T, a.N), 2.0, dtype=torch.float64), generator=gen)  # (T, N)
    else:
        data = torch.randn(T, a.N, generator=gen, dtype=torch.float64)                     # (T, N)
    inputs = torch.randn(T, a.D, generator=gen, dtype=torch.float64) if a.D > 0 else None  # (T, D)
    sig = ref.sigma(spec, data)
    x_all = data[a.L:]                                                                   # (n, N)
    # sx_all[i, l-1] = sigma(x_{t-l}) for sample i at t = i + L.
    sx_all = torch.stack([sig[a.L - l:T - l] for l in range(1, a.L + 1)], dim=1)       # (n, L, N)
    u_all = inputs[a.L:] if inputs is not None else None                                # (n, D)

    params = ref.init_params(spec, gen).requires_grad_(True)
    opt = torch.optim.AdamW([params], lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)

    perm, pos = torch.randperm(a.samples, generator=gen), 0
    loss_val = float("nan")

    def step():
        nonlocal perm, pos, loss_val
        if pos + a.batch > a.samples:  # new epoch: drop the ragged tail, reshuffle
            perm, pos = torch.randperm(a.samples, generator=gen), 0
        idx = perm[pos:pos + a.batch]
        pos += a.batch
        eps = torch.randn(idx.numel(), spec.K, generator=gen, dtype=torch.float64)
        opt.zero_grad(set_to_none=True)
        out = ref.forward(spec, params, x_all[idx], sx_all[idx], u_all[idx] if u_all is not None else None, eps)
        out["loss"].backward()
        opt.step()
        loss_val = float(out["loss"].detach())

    try:
        marks = sorted({int(m) for m in a.marks.split(",") if m.strip()})
    except ValueError:
        p.error(f"--marks {a.marks!r}: expected comma-separated step counts")
    for _ in range(a.warmup):
        step()
    at = {}
    t0 = time.perf_counter()
    for i in range(1, a.steps + 1):
        step()
        if i in marks:
            at[str(i)] = time.perf_counter() - t0
    sec = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch-reference", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "dtype": "float64", "N": a.N, "K": spec.K, "groups": spec.groups, "L": a.L, "D": a.D,
                      "obs": a.obs, "beta": a.beta, "samples": a.samples, "batch": a.batch, "steps": a.steps,
                      "warmup": a.warmup, "seconds": sec, "steps_per_s": a.steps / sec, "seconds_at_step": at,
                      "final_loss": loss_val}))


if __name__ == "__main__":
    main()
