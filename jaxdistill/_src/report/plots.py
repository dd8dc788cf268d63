"""Figures of a distillation result (matplotlib, an optional extra: ``pip install 'jaxdistill[plot]'``)."""

from __future__ import annotations

import os

import numpy as np

from jaxdistill._src.result import DistillOutput


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plots need matplotlib: pip install 'jaxdistill[plot]'") from None
    return plt


def plot_history(out: DistillOutput, ax=None, references: dict[str, float] | None = None):
    """The run against the outer step: the outer data loss, the held-out loss, the loss the stopping
    rule monitored, the returned step (dashed) and, on the right axis, η̃ / the stability bound.

    ``references``: label → loss of a baseline in the same units (½ MSE per row, standardised), drawn as
    dotted horizontal lines — e.g. ``{r["method"]: r["loss"] for r in evaluate(...).rows}`` (test rows)."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    h = out.history
    if h.get("loss") is None or not h["loss"].size:
        ax.text(0.5, 0.5, "no optimisation history (analytic or exact result)", ha="center", va="center")
        ax.set_axis_off()
        return ax
    s = np.arange(1, h["loss"].size + 1)
    objective = str(out.meta.objective or "").split("(")[0] or "outer objective"
    where = "all training rows" if objective == "FullDataLoss" else "the sampled batch"
    if "data_loss" in h and h["data_loss"].size:
        ax.semilogy(s, h["data_loss"], lw=0.7, alpha=0.8, label=f"outer data loss, {objective} on {where}")
    if h["val_loss"].size:
        ax.semilogy(h["eval_step"][:h["val_loss"].size], h["val_loss"], "o-", ms=3, label="held-out loss")
    monitor = out.meta.monitor
    if monitor and monitor != "held-out loss" and h.get("monitored") is not None and h["monitored"].size:
        ax.semilogy(h["eval_step"], h["monitored"], "s", ms=3, mfc="none", label=f"monitored: {monitor}")
    if out.meta.returned_step is not None:
        ax.axvline(out.meta.returned_step, color="k", ls="--", lw=0.8,
                   label=f"returned state (step {out.meta.returned_step})")
    colours = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink", "black")
    for i, (label, value) in enumerate((references or {}).items()):   # every reference drawn, none dropped
        colour = colours[i % len(colours)]
        if np.isfinite(value) and value > 0:
            ax.axhline(value, color=colour, ls=":", lw=1.0, label=f"{label} (test rows)")
    ax.set_xlabel("outer step")
    ax.set_ylabel("½ mean squared error per row (standardised units)")
    ax.set_title(f"distillation of m = {out.m} points: status {out.status}", fontsize=10)
    eta, ratio = h.get("eta"), h.get("stability_ratio")
    if eta is not None and eta.size and np.isfinite(eta).any():
        # η̃ itself and, where one applies, the stability bound it is capped by (η̃ / ratio), in η units
        ax2 = ax.twinx()
        ax2.plot(s, eta, color="tab:gray", lw=0.9, label="η̃")
        if ratio is not None and ratio.size == eta.size and np.isfinite(ratio).any():
            ax2.plot(s, eta / ratio, color="tab:gray", ls="--", lw=0.7, label="stability bound")
            ax2.set_ylabel("inner learning rate: η̃ (grey), its stability bound (grey dashed)", fontsize=8)
        else:
            ax2.set_ylabel("inner learning rate η̃ (grey)", fontsize=8)
        ax2.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper right")
    return ax


def plot_projection(out: DistillOutput, X_real, ax=None, Y_real=None):
    """Real training inputs and distilled inputs on the first two principal axes of the real data; with
    ``Y_real``, every point is coloured by its (first) target, the distilled ones by Ỹ, on one scale."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 5))[1]
    Xs = out.standardizer.x(np.asarray(out.schema.match_features("X_real", X_real)[0], np.float64))
    mu = Xs.mean(0)
    _, _, Vt = np.linalg.svd(Xs - mu, full_matrices=False)
    P = Vt[:2].T
    if Y_real is None:
        ax.scatter(*((Xs - mu) @ P).T, s=6, alpha=0.3, label=f"real ({Xs.shape[0]})")
        ax.scatter(*((out.x - mu) @ P).T, s=40, c="red", marker="*", label=f"distilled ({out.m})")
    else:
        y_real = np.asarray(Y_real, np.float64).reshape(Xs.shape[0], -1)[:, 0]
        y_dist = out.standardizer.y_inverse(out.y)[:, 0]
        lo, hi = float(min(y_real.min(), y_dist.min())), float(max(y_real.max(), y_dist.max()))
        ax.scatter(*((Xs - mu) @ P).T, s=6, alpha=0.4, c=y_real, vmin=lo, vmax=hi, cmap="viridis",
                   label=f"real ({Xs.shape[0]})")
        pts = ax.scatter(*((out.x - mu) @ P).T, s=90, c=y_dist, vmin=lo, vmax=hi, cmap="viridis", marker="*",
                         edgecolors="red", linewidths=0.8, label=f"distilled ({out.m}), coloured by Ỹ")
        ax.figure.colorbar(pts, ax=ax, label="target (first output, original units)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title("distilled vs real (standardised, PCA)")
    ax.legend(fontsize=8)
    return ax


def image_side(d: int) -> int | None:
    """The side of square images of d pixels (d ≥ 16), else None."""
    side = int(round(np.sqrt(d)))
    return side if side * side == d and side >= 4 else None


def plot_images(out: DistillOutput, X_train=None, max_images: int = 20, title: str | None = None,
                standardized: bool = False):
    """Distilled inputs as square grayscale images (digits 8×8, MNIST 28×28), in original units.

    With ``X_train`` (the rows given to ``distill`` / ``distill_analytic``) and a result that started
    from real rows (``meta.init_rows``), the initial images are shown in a first row, the distilled
    ones below (the KRR paper's Figure 2). Targets that are one-hot class scores label each image
    with its arg-max class. ``standardized=True`` shows the images in the standardised pixel space the
    model is trained in (where a set distilled from no real rows shows its class patterns; in original
    units the mean image dominates).
    """
    plt = _plt()
    side = image_side(out.x.shape[1])
    if side is None:
        raise ValueError(f"Inputs of dimension {out.x.shape[1]} are not square images.")
    k = min(out.m, max_images)
    rows = [("distilled", (out.x if standardized else out.X)[:k])]
    init = out.meta.init_rows
    if X_train is not None and init is not None:
        real = np.asarray(X_train, np.float64)[np.asarray(init[:k])]
        rows.insert(0, ("initial (real)", out.standardizer.x(real) if standardized else real))
    fig, axes = plt.subplots(len(rows), k, figsize=(0.9 * k + 0.8, 1.1 * len(rows) + 0.5), squeeze=False)
    Ys = out.Y[:k]
    for i, (label, imgs) in enumerate(rows):
        for j in range(k):
            ax = axes[i, j]
            ax.imshow(imgs[j].reshape(side, side), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == len(rows) - 1 and Ys.shape[1] > 1:
                ax.set_title(str(int(np.argmax(Ys[j]))), fontsize=7)
            if j == 0:
                ax.set_ylabel(label, fontsize=7)
    fig.suptitle(title or f"distilled inputs (m = {out.m}, showing {k})", fontsize=9)
    return fig


def plot_digits(out: DistillOutput, max_images: int = 20):
    """Distilled inputs as images (kept from 0.2; see :func:`plot_images`)."""
    return plot_images(out, max_images=max_images)


def _as_columns(pred) -> np.ndarray:
    """Predictions as an (n, d_out) array (they come 1-D, or as pandas, when the targets were)."""
    pred = np.asarray(pred, np.float64)
    return pred[:, None] if pred.ndim == 1 else pred


def plot_predictions(out: DistillOutput, X_test, Y_test, ax=None, time_series: bool = False, output: int = 0,
                     pred=None):
    """Predictions of the model trained on the distilled set by its own procedure (named in the title)
    against the truth on held-out data, output ``output``, in original units. ``pred``: the predictions
    of all outputs if already computed."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(6, 4))[1]
    pred = _as_columns(out.predict(X_test) if pred is None else pred)[:, output]
    y = np.asarray(Y_test, np.float64).reshape(len(pred), -1)[:, output]
    if time_series:
        ax.plot(y, lw=1, label="truth")
        ax.plot(pred, lw=1, label="model trained on distilled set")
        ax.set_xlabel("held-out time step")
    else:
        ax.scatter(y, pred, s=8, alpha=0.6)
        lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlabel("truth")
        ax.set_ylabel("prediction")
    r2 = 1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2)
    which = f"output {output}, " if out.y.shape[1] > 1 else ""
    ax.set_title(f"held-out predictions ({which}R² {r2:.3f}) of the model trained on the distilled set:\n"
                 f"{out.procedure()}", fontsize=8)
    if time_series:
        ax.legend(fontsize=8)
    return ax


def save_all(out: DistillOutput, outdir, X_train=None, X_test=None, Y_test=None, time_series=False,
             images: bool = False, references: dict[str, float] | None = None, Y_train=None) -> list[str]:
    """Write every applicable figure as PNG into ``outdir``; returns the paths. ``images=True``: the inputs
    are square grayscale images (``images.png``; the CLI sets it for digits and mnist5k); ``references``:
    baseline losses for the loss plot (see :func:`plot_history`)."""
    plt = _plt()
    os.makedirs(outdir, exist_ok=True)
    paths = []

    def save(fig, name):
        p = os.path.join(outdir, name)
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        paths.append(p)

    fig, ax = plt.subplots(figsize=(7, 4))
    plot_history(out, ax, references)
    save(fig, "loss.png")
    if X_train is not None:
        fig, ax = plt.subplots(figsize=(5, 5))
        plot_projection(out, X_train, ax, Y_train)
        save(fig, "projection.png")
    if X_test is not None and Y_test is not None:
        k = out.y.shape[1]                       # one panel per output (up to 10)
        shown = min(k, 10)
        cols = min(shown, 5)
        rows = -(-shown // cols)
        fig, axes = plt.subplots(rows, cols, figsize=((7 if time_series else 5) * cols, 4 * rows), squeeze=False)
        pred = _as_columns(out.predict(X_test))
        for j, ax in enumerate(axes.flat):
            if j < shown:
                plot_predictions(out, X_test, Y_test, ax, time_series=time_series, output=j, pred=pred)
            else:
                ax.set_axis_off()
        save(fig, "predictions.png")
    if images:
        save(plot_images(out, X_train), "images.png")
    return paths
