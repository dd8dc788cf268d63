"""Analytic vs KRR-inner (KIP-style) vs unrolled distillation on digits and diabetes (KRR paper, Table 4 spirit).

    python benchmarks/bench_krr_digits.py          # writes benchmarks/results/krr_table.{md,json}, krr_digits.png

Digits (scikit-learn, 1797 8×8 images): one-hot labels regressed as in the KRR paper, 80/20 split,
pixels standardised with training statistics, targets centred (an intercept). Accuracy = argmax of
the predicted label vector. Each distilled set is scored with the model it was made for:
  analytic (linear)   — least squares on the set (λ_S = 0), distill_analytic with Φ = identity, reproducing
                        ridge (λ) on all training rows;
  analytic (ReLU net) — the same on frozen random leaky-ReLU features Φ(x), distill_analytic with that Φ;
  KIP (NTK)           — KRR with the 1-hidden-layer ReLU NTK, KernelRidge inner solver, Adam, labels learned;
  unrolled (Alg. 1)   — T = 50 inner GD steps (UnrolledGD, the scan), learned η̃, defaults otherwise; with
                        the paper's θ₀ ~ N(0, I) and with θ₀ = 0.
Baselines: m random real rows (mean ± std over 5 draws) and the full training set, with each model.
Wall time covers the distillation only (compilation included), on this machine's CPU.
"""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402
from jaxdistill._src.core.linalg import ridge_unnormalised  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results")
LAM = 1e-2          # λ of ridge / KRR models, unnormalised (‖Φθ − Y‖² + λ‖θ‖²)
NTK = jd.ReLUNTK(depth=1)


def prep(name, seed=0):
    X, Y = datasets.load(name)
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=seed)
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    ym = Ytr.mean(0)
    return (Xtr - mu) / sd, Ytr - ym, (Xte - mu) / sd, Yte - ym, ym


def scores(pred, Yte, ym, classify):
    mse = float(np.mean((pred - Yte) ** 2))
    if classify:
        return {"acc": float(np.mean(np.argmax(pred + ym, 1) == np.argmax(Yte + ym, 1))), "mse": mse}
    r2 = 1 - np.sum((pred - Yte) ** 2) / np.sum((Yte - Yte.mean(0)) ** 2)
    return {"r2": float(r2), "mse": mse}


def linear_pred(Xs, Ys, Xte, lam, fmap=None):
    fmap = jd.Identity() if fmap is None else fmap
    th = ridge_unnormalised(fmap.batch(jnp.asarray(Xs)), jnp.asarray(Ys), lam)
    return np.asarray(fmap.batch(jnp.asarray(Xte)) @ th)


def krr_pred(Xs, Ys, Xte, lam):
    K = NTK.matrix(jnp.asarray(Xs), jnp.asarray(Xs))
    a = jnp.linalg.solve(K + lam * jnp.eye(K.shape[0]), jnp.asarray(Ys))
    return np.asarray(NTK.matrix(jnp.asarray(Xte), jnp.asarray(Xs)) @ a)


def in_units(out, predict):
    """Predictions on the benchmark's test inputs, through distill()'s own standardisation and back."""
    return out.standardizer.y_inverse(np.asarray(predict(out.standardizer.x(XTE[0])), np.float64))


XTE = [None]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_dataset(name, ms, classify, images):
    Xtr, Ytr, Xte, Yte, ym = prep(name)
    XTE[0] = Xte
    d = Xtr.shape[1]
    relu = jd.RandomReLUNet(jax.random.PRNGKey(7), d, depth=1)
    rows = []

    def add(method, m, pred_or_list, wall=None):
        preds = pred_or_list if isinstance(pred_or_list, list) else [pred_or_list]
        ss = [scores(p, Yte, ym, classify) for p in preds]
        row = {"dataset": name, "method": method, "m": m, "wall_s": wall}
        for k in ss[0]:
            row[k] = float(np.mean([s[k] for s in ss]))
            row[k + "_std"] = float(np.std([s[k] for s in ss]))
        rows.append(row)
        print(row, flush=True)

    n = Xtr.shape[0]
    add("full data, linear ridge", n, linear_pred(Xtr, Ytr, Xte, LAM))
    add("full data, ReLU-net ridge", n, linear_pred(Xtr, Ytr, Xte, LAM, relu))
    add("full data, KRR (NTK)", n, krr_pred(Xtr, Ytr, Xte, LAM))
    for m in ms:
        subs = [np.asarray(jax.random.choice(jax.random.PRNGKey(100 + i), n, (m,), replace=False)) for i in range(5)]
        add("random subset, linear ridge", m, [linear_pred(Xtr[i], Ytr[i], Xte, LAM) for i in subs])
        add("random subset, KRR (NTK)", m, [krr_pred(Xtr[i], Ytr[i], Xte, LAM) for i in subs])

        res, wall = timed(lambda: jd.distill_analytic(Xtr, Ytr, m, lam=LAM, lam_s=0.0, key=0,
                                                              standardize=False))
        add("analytic (linear)", m, linear_pred(res.x, res.y, Xte, 0.0), wall)
        images.setdefault((name, m), {})["analytic (linear)"] = res.x
        res2, wall = timed(lambda: jd.distill_analytic(Xtr, Ytr, m, lam=LAM, lam_s=0.0, feature_map=relu, key=0,
                                                               standardize=False))
        add("analytic (ReLU net)", m, linear_pred(res2.x, res2.y, Xte, 0.0, relu), wall)

        kip_kw = dict(m=m, steps=300, eval_every=100, lambda_inner=LAM / m, lr_eta=0.0, standardize=True,
                      validation_fraction=0.0, batch_size=256, key=0, progress=False,
                      optimizer_x=optax.adam(0.01), optimizer_y=optax.adam(0.01))
        out, wall = timed(lambda: jd.distill(Xtr, Ytr, inner_solver=jd.KernelRidge(NTK), **kip_kw))
        add("KIP (NTK), 300 steps", m, in_units(out, lambda Xs: krr_pred(out.x, out.y, Xs, LAM)), wall)
        images[(name, m)]["KIP (NTK)"] = out.x

        # Unrolled Algorithm 1 with the scan. p(θ₀) = N(0, I) is the paper's; with m < d the part of θ₀
        # outside the span of the distilled rows is never trained, so θ₀ = 0 (init_scale=0) is shown too.
        for label, scale, Q in (("θ₀ ~ N(0, I)", 1.0, 8), ("θ₀ = 0", 0.0, 1)):
            model = jd.LinearModel(init_scale=scale)
            unr_kw = dict(m=m, steps=300, T=50, Q=Q, eval_every=100, standardize=True, validation_fraction=0.0,
                          key=0, progress=False)
            out, wall = timed(lambda: jd.distill(Xtr, Ytr, inner_solver=jd.UnrolledGD(), model=model, **unr_kw))
            th0 = jax.vmap(lambda k: model.init(k, jnp.asarray(out.x[:1]), Ytr.shape[1]))(
                jax.random.split(jax.random.PRNGKey(1), 8))
            thT = jax.vmap(lambda t: jd.UnrolledGD().train(
                model, jd.Support(jnp.asarray(out.x), jnp.asarray(out.y), out.inner_lr, out.lambda_inner), t,
                50, 50))(th0)
            add(f"unrolled (Alg. 1, T=50, {label}), 300 steps", m,
                [in_units(out, lambda Xs, t=t: np.asarray(jnp.asarray(Xs) @ t)) for t in thT], wall)
            images[(name, m)][f"unrolled ({label})"] = out.x
    return rows


def main():
    images = {}
    rows = run_dataset("digits", [10, 100, 500], True, images)
    rows += run_dataset("diabetes", [1, 10, 40], False, images)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "krr_table.json"), "w") as f:
        json.dump({"rows": rows, "lam": LAM, "backend": jax.default_backend(), "cpus": os.cpu_count()}, f, indent=1)
    L = ["# Analytic vs KIP-style vs unrolled distillation\n",
         f"λ = {LAM} (unnormalised ridge / KRR), CPU ({os.cpu_count()} cores). Wall time = distillation only. "
         "Speed-up = KIP's time / this method's time for the same m.\n"]
    for name, metric in (("digits", "acc"), ("diabetes", "r2")):
        L += [f"## {name}\n", f"| method | m | test {'accuracy' if metric == 'acc' else 'R²'} | test MSE | wall s | "
              "speed-up vs KIP |", "|---|---:|---:|---:|---:|---:|"]
        kip = {r["m"]: r["wall_s"] for r in rows if r["dataset"] == name and r["method"].startswith("KIP")}
        for r in rows:
            if r["dataset"] != name:
                continue
            sd = f" ± {r[metric + '_std']:.3f}" if r[metric + "_std"] > 0 else ""
            wall = "" if r["wall_s"] is None else f"{r['wall_s']:.2f}"
            sp = "" if r["wall_s"] is None or r["m"] not in kip else f"{kip[r['m']] / r['wall_s']:.1f}×"
            L.append(f"| {r['method']} | {r['m']} | {r[metric]:.4f}{sd} | {r['mse']:.4g} | {wall} | {sp} |")
        L.append("")
    md = "\n".join(L)
    with open(os.path.join(OUT, "krr_table.md"), "w") as f:
        f.write(md)
    print(md)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    sets = images[("digits", 10)]
    fig, axes = plt.subplots(len(sets), 10, figsize=(10, 1.2 * len(sets) + 0.4))
    for i, (label, x) in enumerate(sets.items()):
        for j in range(10):
            ax = axes[i, j]
            ax.imshow(np.asarray(x[j]).reshape(8, 8), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, rotation=0, ha="right", fontsize=8)
    fig.suptitle("Distilled digits, one point per class (standardised pixel space)")
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, "krr_digits.png"), dpi=100)


if __name__ == "__main__":
    main()
