"""`distill(X, Y, m)` with its defaults against a plain PyTorch implementation of Algorithm 1 with the same
settings, on real data sets (issue #10's last target).

    python benchmarks/bench_torch_linear.py     # writes benchmarks/results/torch_linear.{md,json}; needs torch

Both solve the same problem on the same standardised training rows (PyTorch's outer loss uses all of them;
jaxdistill holds 10 % back to monitor its stopping rule): a linear model, θ₀ = 0, T = 50 inner GD steps with the
learned η̃ (λ_I = 1e-3), the outer loss over **all** training rows (1/2n)‖Φθ_T − Y‖² + λ_O/2 (‖X̃‖² + ‖Ỹ‖²),
Adam (lr 0.01) on X̃, Ỹ and η̃, η̃₀ = half the bound of Lemma 2.4 and η̃ clipped to [10⁻³ η̃₀, 0.9 × bound]
after every step, X̃₀ = the same m real rows.

* **jaxdistill**: `distill(Xtr, Ytr, m=m, key=0)` — the exact full-data objective from sufficient
  statistics (O(p²) per step, not O(n)), the closed-form inner solve (ExactLinearGD), compiled; it stops by
  its own rule and returns its best state.
* **PyTorch**: the textbook implementation — the T inner steps as a Python loop, autograd through it,
  the outer loss computed on all n rows each step (eager, float64 like jaxdistill here), run for the same
  number of outer steps as jaxdistill ran, its last state.

Reported per data set: the median ms per outer step (steady state, after warm-up) of each; the end-to-end wall
time of the whole run (jaxdistill: compilation, statistics pass, evaluations and stopping included;
PyTorch: the same number of steps); the held-out test R² of each distilled set trained by its own procedure
(T-step GD from θ₀ = 0) against full-data ridge. Both in one process, side by side, 2 threads each.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _results as results  # noqa: E402

SETS = ("diabetes", "digits", "randhie", "fair", "co2", "sunspots")
M, T, LAM_I, LAM_O, LR = 20, 50, 1e-3, 1e-3, 0.01


def torch_run(Xs, Ys, x0, y0, steps: int):
    """Plain Algorithm 1 in PyTorch (full-data outer loss, autograd through the Python loop of T steps).
    Returns (X̃, Ỹ, η̃, median ms per step, wall s for ``steps`` steps)."""
    import torch
    torch.set_num_threads(2)
    X, Y = torch.tensor(Xs), torch.tensor(Ys)
    n, m = X.shape[0], x0.shape[0]

    def bound(F):
        top = torch.linalg.eigvalsh(F @ F.T if F.shape[0] <= F.shape[1] else F.T @ F)[-1]
        return float(2 * m / (top + m * LAM_I))

    xt = torch.tensor(x0, requires_grad=True)
    yt = torch.tensor(y0, requires_grad=True)
    eta0 = 0.5 * bound(xt.detach())
    eta = torch.tensor(eta0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([xt, yt, eta], lr=LR)
    times = []
    t_start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        theta = torch.zeros(X.shape[1], Y.shape[1], dtype=torch.float64)
        for _ in range(T):
            grad = xt.T @ (xt @ theta - yt) / m + LAM_I * theta
            theta = theta - eta * grad
        loss = 0.5 * torch.sum((X @ theta - Y) ** 2) / n + 0.5 * LAM_O * (torch.sum(xt ** 2) + torch.sum(yt ** 2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            eta.clamp_(min=1e-3 * eta0, max=0.9 * bound(xt.detach()))
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_start
    return (xt.detach().numpy(), yt.detach().numpy(), float(eta.detach()), 1e3 * statistics.median(times[5:]),
            wall)


def r2_of_set(x, y, eta, Xte_s, Yte, std):
    """Held-out R² (original units) of T-step GD from θ₀ = 0 on (x, y) with step size eta."""
    theta = np.zeros((x.shape[1], y.shape[1]))
    for _ in range(T):
        theta = theta - eta * (x.T @ (x @ theta - y) / x.shape[0] + LAM_I * theta)
    pred = std.y_inverse(Xte_s @ theta)
    return float(1 - np.sum((pred - Yte) ** 2) / np.sum((Yte - Yte.mean(0)) ** 2))


def one(name):
    import jax

    import jaxdistill as jd
    from jaxdistill import datasets
    jax.config.update("jax_enable_x64", True)
    X, Y = datasets.load(name)
    Xtr, Ytr, Xte, Yte = datasets.split(name, X, Y, 0.2, key=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = jd.distill(Xtr, Ytr, m=M, key=0, progress=False)
    jd_wall = time.perf_counter() - t0
    steps = int(out.meta["steps_run"])
    std = out.standardizer
    # all training rows, standardised as jaxdistill did (it holds 10 % of them back to monitor its stopping
    # rule, so PyTorch's outer loss sees ~11 % more rows per step than jaxdistill's); the same m start rows
    Xs, Ys = std.x(Xtr), std.y(Ytr)
    init = np.asarray(out.meta["init_rows"])
    x0, y0 = Xs[init], Ys[init]
    # jaxdistill's steady-state step: the same run again, compiled programs reused, timed per evaluation chunk
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = jd.distill(Xtr, Ytr, m=M, key=0, progress=False)
    h = again.history
    per_chunk = np.diff(h["eval_time"]) / np.diff(h["eval_step"])
    jd_ms = 1e3 * float(np.median(per_chunk[1:])) if per_chunk.size > 1 else float("nan")
    tx, ty, teta, t_ms, t_wall = torch_run(Xs, Ys, x0, y0, steps)
    Xte_s = std.x(Xte)
    ridge = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=1).row("full")["r2"]
    return {"data": name, "n": int(Xs.shape[0]), "d": int(X.shape[1]), "d_out": int(Ytr.shape[1]), "m": M,
            "steps": steps, "status": out.status,
            "jd_ms_per_step": jd_ms, "torch_ms_per_step": t_ms, "jd_wall_s": jd_wall, "torch_wall_s": t_wall,
            "jd_r2": r2_of_set(out.x, out.y, out.inner_lr, Xte_s, Yte, std),
            "torch_r2": r2_of_set(tx, ty, teta, Xte_s, Yte, std), "ridge_r2": float(ridge),
            "jd_eta": out.inner_lr, "torch_eta": teta}


def main():
    import torch
    rows = []
    for name in SETS:
        r = one(name)
        rows.append(r)
        print(f"{name:9s} n {r['n']:6d}  steps {r['steps']:5d}  ms/step jd {r['jd_ms_per_step']:.3f} "
              f"torch {r['torch_ms_per_step']:.3f}  wall jd {r['jd_wall_s']:.1f}s torch {r['torch_wall_s']:.1f}s  "
              f"R² jd {r['jd_r2']:.4f} torch {r['torch_r2']:.4f} ridge {r['ridge_r2']:.4f}", flush=True)
    env = results.environment(f"PyTorch {torch.__version__} (2 threads), float64")
    lines = ["# jaxdistill defaults vs plain PyTorch Algorithm 1 (linear model, same settings)", "",
             f"`python benchmarks/bench_torch_linear.py` — {env}. m = {M}, T = {T}, θ₀ = 0, Adam lr {LR} on X̃, Ỹ, "
             "η̃, outer loss over all training rows. Both in one process, side by side.", "",
             "| data | n_train | d | steps | jaxdistill ms/step | PyTorch ms/step | step ratio | jaxdistill wall s "
             "| PyTorch wall s (same steps) | wall ratio | R² jaxdistill | R² PyTorch | R² full ridge |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['n']} | {r['d']} | {r['steps']} | {r['jd_ms_per_step']:.3f} | "
                     f"{r['torch_ms_per_step']:.2f} | {r['torch_ms_per_step'] / r['jd_ms_per_step']:.0f}× | "
                     f"{r['jd_wall_s']:.1f} | {r['torch_wall_s']:.1f} | {r['torch_wall_s'] / r['jd_wall_s']:.1f}× | "
                     f"{r['jd_r2']:.4f} | {r['torch_r2']:.4f} | {r['ridge_r2']:.4f} |")
    step_ratio = [r["torch_ms_per_step"] / r["jd_ms_per_step"] for r in rows]
    wall_ratio = [r["torch_wall_s"] / r["jd_wall_s"] for r in rows]
    lines += ["", f"- per outer step PyTorch ÷ jaxdistill: median {statistics.median(step_ratio):.0f}× "
              f"(min {min(step_ratio):.0f}×, max {max(step_ratio):.0f}×); whole run (jaxdistill's compilation, "
              f"statistics pass and evaluations included): median {statistics.median(wall_ratio):.1f}× "
              f"(min {min(wall_ratio):.1f}×, max {max(wall_ratio):.1f}×).",
              "- jaxdistill's step costs nothing in n (sufficient statistics, closed-form inner solve); PyTorch's "
              "unrolled step is O(T·m·p) for the inner loop plus O(n·p) for the outer loss, every step.",
              "- R² columns: each distilled set trained by T-step GD from θ₀ = 0 with its own learned η̃, on the "
              "test split (original units). jaxdistill returns its best state, PyTorch its last."]
    results.save("torch_linear", env, rows, lines)


if __name__ == "__main__":
    main()
