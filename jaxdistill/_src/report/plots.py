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


def _dataset(out: DistillOutput) -> str:
    """The data set's name where the result records it (``jaxdistill run`` / ``demo``), else ``""``."""
    exp = out.meta.get("experiment") or {}
    return str((exp.get("dataset") or {}).get("name") or "")


def _prefix(out: DistillOutput, title: str | None) -> str:
    name = title if title is not None else _dataset(out)
    return f"{name}: " if name else ""


def _legend_outside(ax, **kw):
    """A legend to the right of the axes, never over the data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7, **kw)


def _scale(ax, *values, axis: str = "y") -> None:
    """A log scale where the positive values span at least a factor 10, labelled at 1, 2 and 5 × 10^k (so that at
    least three ticks are labelled); a linear scale otherwise (a log axis inside one decade shows no numbers)."""
    from matplotlib import ticker
    v = np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in values]) if values else np.zeros(0)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() <= 0 or v.max() / v.min() < 10:
        return
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(np.inf, np.inf)))
    target.set_minor_locator(ticker.NullLocator())


def _bound_label(out: DistillOutput) -> str:
    """What η̃'s cap is: Lemma 2.4 for models linear in θ, the inner Hessian's 2/λ_max otherwise."""
    if getattr(out.model, "linear_in_params", False):
        return "stability bound (Lemma 2.4)"
    return "stability bound 2/λ_max (inner Hessian)"


def plot_history(out: DistillOutput, ax=None, references: dict[str, float] | None = None, title: str | None = None):
    """The run against the outer step, for a reader.

    The loss panel shows the outer data loss, the held-out loss (on the validation rows held out of the run), the
    loss the stopping rule monitored and the returned step. Below it, the inner learning rate η̃ and the stability
    bound that caps it (Lemma 2.4 for models linear in θ, 2/λ_max of the inner Hessian otherwise). Baselines in
    ``references`` are losses on the **test** rows, so they get their own panel on the right — a dot per method,
    labelled by name on its axis — and never share an axis with the validation curves. Each panel's legend has at
    most four entries; an axis spanning less than a factor 10 is linear (a log axis inside one decade shows no
    numbers).

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput] with an optimisation history.
      ax: draw the loss panel into these axes (then without the η̃ and test panels; references are then drawn as
        dotted lines labelled at their right end, and the legend says they are test rows); default: a new figure.
      references: label → loss of a method on the test rows in the same units (½ MSE per row, standardised), e.g.
        ``{r["method"]: r["loss"] for r in evaluate(...).rows}``. Every entry is drawn.
      title: the data set's name for the title (default: the one the result records, if any).

    Returns:
      The loss panel's matplotlib axes (``ax.figure`` is the figure).
    """
    plt = _plt()
    h = out.history
    eta = h.get("eta") if h is not None else None
    has_eta = eta is not None and eta.size > 0 and bool(np.isfinite(eta).any())
    refs = {k: float(v) for k, v in (references or {}).items() if np.isfinite(v) and v > 0}
    ax_eta = ax_ref = None
    if ax is None:
        fig = plt.figure(figsize=(10.5 if refs else 8, 5.4 if has_eta else 4), layout="constrained")
        grid = fig.add_gridspec(2 if has_eta else 1, 2 if refs else 1, height_ratios=[3, 1.3] if has_eta else [1],
                                width_ratios=[2.3, 1] if refs else [1])
        ax = fig.add_subplot(grid[0, 0])
        if has_eta:
            ax_eta = fig.add_subplot(grid[1, 0], sharex=ax)
        if refs:
            ax_ref = fig.add_subplot(grid[0, 1])
    if h is None or h.get("loss") is None or not h["loss"].size:
        ax.text(0.5, 0.5, "no optimisation history (analytic or exact result)", ha="center", va="center")
        ax.set_axis_off()
        for other in (ax_eta, ax_ref):
            if other is not None:
                other.set_axis_off()
        return ax
    s = np.arange(1, h["loss"].size + 1)
    objective = str(out.meta.get("objective") or "").split("(")[0] or "outer objective"
    where = "all training rows" if objective == "FullDataLoss" else "the sampled batch"
    curves = []
    if "data_loss" in h and h["data_loss"].size:
        ax.plot(s, h["data_loss"], lw=0.7, alpha=0.8, label=f"outer data loss ({objective} on {where})")
        curves.append(h["data_loss"])
    if h["val_loss"].size:
        ax.plot(h["eval_step"][:h["val_loss"].size], h["val_loss"], "o-", ms=3,
                label="held-out loss (validation rows)")
        curves.append(h["val_loss"])
    monitor = out.meta.get("monitor")
    if monitor and monitor != "held-out loss" and h.get("monitored") is not None and h["monitored"].size:
        ax.plot(h["eval_step"], h["monitored"], "s", ms=3, mfc="none", label=f"monitored: {monitor}")
        curves.append(h["monitored"])
    returned = out.meta.get("returned_step")
    if returned is not None:
        ax.axvline(returned, color="k", ls="--", lw=0.8, label=f"returned state (step {returned})")
    if refs and ax_ref is None:                      # into a given axes: dotted lines, labelled where they end
        for label, value in refs.items():
            ax.axhline(value, color="0.45", ls=":", lw=1.0)
            ax.annotate(label, (1.0, value), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", fontsize=6, va="center", color="0.3")
        ax.plot([], [], color="0.45", ls=":", lw=1.0, label="baselines on the test rows (labelled)")
        curves.append(np.array(list(refs.values())))
    _scale(ax, *curves)
    ax.set_ylabel("½ MSE per row\n(standardised targets)")
    ax.set_title(f"{_prefix(out, title)}distilling into m = {out.m} points, status {out.status}\n"
                 f"trained by: {out.procedure()}", fontsize=9, loc="left")
    ax.grid(alpha=0.3, which="both", lw=0.4)
    ax.legend(fontsize=7, loc="best")
    if ax_ref is not None:
        _reference_panel(ax_ref, refs)
    if ax_eta is None:
        ax.set_xlabel("outer step")
        return ax
    plt.setp(ax.get_xticklabels(), visible=False)
    _eta_panel(out, ax_eta)
    return ax


def _reference_panel(ax, refs: dict[str, float]) -> None:
    """Methods' losses on the test rows as labelled dots (names on the axis: no legend); the distilled set's own
    rows (labels starting "distilled") in blue, the baselines in grey."""
    names = list(refs)
    values = np.array([refs[k] for k in names])
    y = np.arange(len(names))[::-1]
    mine = np.array([k.lower().startswith("distilled") for k in names])
    ax.plot(values[~mine], y[~mine], "o", color="0.35", ms=5)
    ax.plot(values[mine], y[mine], "D", color="tab:blue", ms=6)
    ax.set_yticks(y, names, fontsize=7)
    for tick, own in zip(ax.get_yticklabels(), mine, strict=True):
        tick.set_color("tab:blue" if own else "black")
    ax.set_ylim(-0.7, len(names) - 0.3)
    _scale(ax, values, axis="x")
    lo, hi = float(values.min()), float(values.max())
    if ax.get_xscale() != "log":
        pad = 0.08 * (hi - lo) if hi > lo else 0.1 * abs(hi) + 1e-3
        ax.set_xlim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
    ax.set_xlabel("½ MSE per row on the test rows")
    ax.set_title("test rows (never seen in the run)", fontsize=9, loc="left")
    ax.grid(alpha=0.3, lw=0.4, axis="x")


def _eta_panel(out: DistillOutput, ax) -> None:
    h = out.history
    eta, ratio = h.get("eta"), h.get("stability_ratio")
    s = np.arange(1, eta.size + 1)
    ax.plot(s, eta, color="tab:blue", lw=1.0, label="η̃ (learned)")
    shown = [eta]
    if ratio is not None and ratio.size == eta.size and np.isfinite(ratio).any():
        bound = eta / ratio
        ax.plot(s, bound, color="tab:orange", ls="--", lw=1.0, label=_bound_label(out))
        shown.append(bound)
        ax.set_ylabel("η̃ and its bound")
    else:
        ax.set_ylabel("η̃")
    _scale(ax, *shown)
    if out.meta.get("returned_step") is not None:
        ax.axvline(out.meta["returned_step"], color="k", ls="--", lw=0.8)
    ax.set_xlabel("outer step")
    ax.grid(alpha=0.3, lw=0.4)
    ax.legend(fontsize=7, loc="best")


def plot_inner_lr(out: DistillOutput, ax=None):
    """η̃ and its stability bound against the outer step on their own axes (the lower panel of
    [`plot_history`][jaxdistill.plots.plot_history]).

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput] with an optimisation history.
      ax: axes to draw into (default: a new figure).

    Returns:
      The matplotlib axes."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(7, 2.5), layout="constrained")[1]
    eta = out.history.get("eta") if out.history is not None else None
    if eta is None or not eta.size:
        ax.text(0.5, 0.5, "no η̃ history", ha="center", va="center")
        ax.set_axis_off()
        return ax
    _eta_panel(out, ax)
    return ax


def plot_projection(out: DistillOutput, X_real, Y_real=None, ax=None):
    """Real training inputs and distilled inputs on the first two principal axes of the real data; with
    ``Y_real``, every point is coloured by its (first) target, the distilled ones by Ỹ, on one scale.

    The arguments come in the order of [`plot_predictions`][jaxdistill.plots.plot_predictions]'s: the result, the
    rows (X, then Y), then the axes. (Before 0.9 the axes came before ``Y_real``; axes passed there still work,
    with a ``DeprecationWarning``.)

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput].
      X_real: real training inputs in original units.
      Y_real: their targets (colours the points), optional.
      ax: axes to draw into (default: a new figure).

    Returns:
      The matplotlib axes."""
    plt = _plt()
    if Y_real is not None and hasattr(Y_real, "scatter"):      # the 0.8 order: (out, X_real, ax, Y_real)
        import warnings
        warnings.warn("plot_projection(out, X_real, ax, Y_real) is the old argument order; pass "
                      "plot_projection(out, X_real, Y_real, ax=ax).", DeprecationWarning, stacklevel=2)
        Y_real, ax = ax, Y_real
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

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput] whose inputs are square images (d = k²).
      X_train: the rows given to ``distill`` (shows the initial images above the distilled ones).
      max_images: the most images shown.
      title: the figure's title (default: the one the result records, if any).
      standardized: show the standardised pixel space the model is trained in.

    Returns:
      The matplotlib figure.
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
    """Distilled inputs as images (kept from 0.2; see [`plot_images`][jaxdistill.plots.plot_images])."""
    return plot_images(out, max_images=max_images)


def _as_columns(pred) -> np.ndarray:
    """Predictions as an (n, d_out) array (they come 1-D, or as pandas, when the targets were)."""
    pred = np.asarray(pred, np.float64)
    return pred[:, None] if pred.ndim == 1 else pred


def _r2(pred, y) -> float:
    sst = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((pred - y) ** 2) / sst) if sst > 0 else float("nan")


def _target_label(out: DistillOutput, output: int, units: str | None) -> str:
    names = out.schema.target_names if out.schema is not None else None
    name = str(names[output]) if names and output < len(names) else (
        f"target {output}" if out.y.shape[1] > 1 else "target")
    return f"{name} ({units})" if units else f"{name} (original units)"


def _baseline(report, row_id: str | None, n: int, output: int):
    """(label, predictions of one output) of a report row, or None."""
    if report is None or not row_id or row_id not in getattr(report, "predictions", {}):
        return None
    pred = _as_columns(report.predictions[row_id])
    if pred.shape[0] != n:
        raise ValueError(f"The report's predictions have {pred.shape[0]} rows but X_test has {n}: pass the report "
                         "evaluate() gave on these test rows.")
    return report.row(row_id)["method"], pred[:, output]


def plot_predictions(out: DistillOutput, X_test, Y_test, ax=None, time_series: bool = False, output: int = 0,
                     pred=None, report=None, baseline: str | None = "full", units: str | None = None,
                     title: str | None = None):
    """Held-out predictions of the model trained on the distilled set, against the truth and a baseline.

    Scatter (default): prediction against truth with the y = x line, the distilled model's points filled and
    the baseline's hollow, each with its R² in the legend. ``time_series=True``: truth and predictions against
    the held-out step, and below them (on a new figure) the residuals, prediction − truth, so that lines that
    overlap stay readable; into a given ``ax``, the gap between truth and prediction is shaded instead.

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput].
      X_test: held-out inputs in original units.
      Y_test: held-out targets in original units.
      ax: axes to draw into (default: a new figure).
      time_series: draw against the held-out step (rows in time order).
      output: which output to draw (multi-output targets).
      pred: the distilled model's predictions of all outputs, if already computed.
      report: an [`EvalReport`][jaxdistill.EvalReport] of ``evaluate(out, X_test, Y_test, ...)``: its
        ``baseline`` row's predictions are drawn for comparison.
      baseline: the report row drawn (default ``"full"``: the model the distilled set targets; ``"naive"``,
        ``"subset"``, …; None: none).
      units: the target's units for the axis labels (default: "original units").
      title: the data set's name for the title (default: the one the result records, if any).

    Returns:
      The (upper) matplotlib axes.
    """
    plt = _plt()
    pred = _as_columns(out.predict(X_test) if pred is None else pred)[:, output]
    y = np.asarray(Y_test, np.float64).reshape(len(pred), -1)[:, output]
    base = _baseline(report, baseline, len(pred), output)
    label = _target_label(out, output, units)
    r2 = _r2(pred, y)
    ax_res = None
    if ax is None:
        if time_series:
            fig, (ax, ax_res) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True, layout="constrained",
                                             gridspec_kw={"height_ratios": [2, 1]})
        else:
            fig, ax = plt.subplots(figsize=(7.5, 5), layout="constrained")
    mine = f"distilled set (m = {out.m}), R² {r2:.3f}"
    if time_series:
        t = np.arange(len(y))
        ax.plot(t, y, color="k", lw=1.2, label="truth")
        ax.plot(t, pred, color="tab:blue", lw=1.0, label=mine)
        if base is not None:
            ax.plot(t, base[1], color="tab:orange", lw=1.0, ls="--", label=f"{base[0]}, R² {_r2(base[1], y):.3f}")
        if ax_res is None:
            ax.fill_between(t, y, pred, color="tab:blue", alpha=0.2, lw=0, label="error of the distilled model")
            ax.set_xlabel("held-out time step")
        else:
            ax_res.axhline(0, color="k", lw=0.8)
            ax_res.plot(t, pred - y, color="tab:blue", lw=1.0, label="distilled set")
            if base is not None:
                ax_res.plot(t, base[1] - y, color="tab:orange", lw=1.0, ls="--", label=base[0])
            ax_res.set_ylabel("residual\n(prediction − truth)")
            ax_res.set_xlabel("held-out time step")
            ax_res.grid(alpha=0.3, lw=0.4)
            _legend_outside(ax_res)
        ax.set_ylabel(label)
    else:
        if base is not None:
            ax.scatter(y, base[1], s=14, facecolors="none", edgecolors="tab:orange", lw=0.8,
                       label=f"{base[0]}, R² {_r2(base[1], y):.3f}")
        ax.scatter(y, pred, s=10, alpha=0.7, color="tab:blue", label=mine)
        both = np.concatenate([y, pred] + ([base[1]] if base is not None else []))
        lo, hi = float(both.min()), float(both.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="prediction = truth")
        ax.set_xlabel(f"true {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3, lw=0.4)
    _legend_outside(ax)
    which = f"output {output}, " if out.y.shape[1] > 1 else ""
    _wrapped_title(ax, f"{_prefix(out, title)}held-out predictions ({which}R² {r2:.3f}) of the model trained on the "
                       f"distilled set:\n{out.procedure()}")
    return ax


def _wrapped_title(ax, text: str, fontsize: float = 8) -> None:
    """A left-aligned title wrapped to the axes' width (a long one ran off the figure's left edge)."""
    import textwrap
    width_in = ax.get_position().width * ax.figure.get_figwidth() * 0.8      # the legend outside takes a share
    chars = max(30, int(width_in * 72 / (0.6 * fontsize)))
    ax.set_title("\n".join(textwrap.fill(line, chars) for line in text.split("\n")), fontsize=fontsize, loc="left")


def is_one_hot(Y) -> bool:
    """Whether targets are one-hot class indicators (k ≥ 2 columns of 0/1 with one 1 per row)."""
    Y = np.asarray(Y, np.float64)
    return Y.ndim == 2 and Y.shape[1] >= 2 and bool(np.isin(Y, (0.0, 1.0)).all()) and bool((Y.sum(1) == 1).all())


def plot_confusion(out: DistillOutput, X_test, Y_test, ax=None, pred=None, report=None, title: str | None = None):
    """Classification by one-hot regression targets: the confusion matrix of the model trained on the
    distilled set (rows: true class, share of each class's test rows; the predicted class is the arg-max
    output), with its accuracy and, from an [`EvalReport`][jaxdistill.EvalReport], the full-data and random-
    subset accuracies in the title.

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput] whose targets are one-hot class scores.
      X_test: held-out inputs, in original units.
      Y_test: their one-hot targets.
      ax: axes to draw into (default: a new figure).
      pred: the distilled model's predictions on ``X_test``, if already computed.
      report: an [`EvalReport`][jaxdistill.EvalReport] on the same rows, for the baselines' accuracies.
      title: the data set's name for the title (default: the one the result records, if any).

    Returns:
      The matplotlib axes.
    """
    plt = _plt()
    Y = np.asarray(Y_test, np.float64)
    if not is_one_hot(Y):
        raise ValueError("plot_confusion needs one-hot targets (k ≥ 2 columns of 0/1, one 1 per row); use "
                         "plot_predictions for real-valued targets.")
    pred = _as_columns(out.predict(X_test) if pred is None else pred)
    k = Y.shape[1]
    truth, guess = Y.argmax(1), pred.argmax(1)
    counts = np.zeros((k, k))
    np.add.at(counts, (truth, guess), 1)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax = ax or plt.subplots(figsize=(6.2, 5.2), layout="constrained")[1]
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class (arg-max output)")
    ax.set_ylabel("true class")
    ax.figure.colorbar(im, ax=ax, label="share of the true class's test rows")
    acc = float(np.mean(truth == guess))
    extra = []
    for row_id in ("full", "subset"):
        if report is not None and row_id in report.predictions:
            other = np.mean(_as_columns(report.predictions[row_id]).argmax(1) == truth)
            extra.append(f"{report.row(row_id)['method']} {100 * other:.1f} %")
    ax.set_title(f"{_prefix(out, title)}model trained on the distilled set (m = {out.m}): accuracy "
                 f"{100 * acc:.1f} %" + (f"\n(vs {'; '.join(extra)})" if extra else ""), fontsize=8)
    return ax


def save_all(out: DistillOutput, outdir, X_train=None, X_test=None, Y_test=None, time_series=False,
             images: bool = False, references: dict[str, float] | None = None, Y_train=None, report=None,
             title: str | None = None) -> list[str]:
    """Write every applicable figure as PNG into ``outdir``; returns the paths.

    ``loss.png`` always; ``projection.png`` with ``X_train``; with ``X_test`` and ``Y_test``
    ``predictions.png`` (one panel per output, up to 10) or, for one-hot targets, ``confusion.png``;
    ``images.png`` with ``images=True`` (square grayscale inputs; the CLI sets it for digits and mnist5k).

    Args:
      out: a [`DistillOutput`][jaxdistill.DistillOutput].
      outdir: the folder to write into (created if missing).
      X_train: the training inputs, original units (the projection figure).
      X_test: held-out inputs, original units (the prediction or confusion figure).
      Y_test: their targets.
      Y_train: the training targets (colours the projection).
      time_series: draw predictions against the held-out step.
      images: also write ``images.png``.
      references: baseline losses for the loss plot (see [`plot_history`][jaxdistill.plots.plot_history]);
        default: taken from ``report``.
      report: an [`EvalReport`][jaxdistill.EvalReport] on ``X_test``, ``Y_test``: baselines drawn in the loss
        and prediction figures.
      title: the data set's name for the titles (default: the one the result records, if any).

    Returns:
      The paths written.
    """
    plt = _plt()
    os.makedirs(outdir, exist_ok=True)
    paths = []
    if references is None and report is not None:
        references = {r["method"]: r["loss"] for r in report.rows}     # on their own panel: the test rows

    def save(fig, name):
        p = os.path.join(outdir, name)
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(p)

    save(plot_history(out, references=references, title=title).figure, "loss.png")
    if X_train is not None:
        fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
        plot_projection(out, X_train, Y_train, ax=ax)
        save(fig, "projection.png")
    if X_test is not None and Y_test is not None:
        pred = _as_columns(out.predict(X_test))
        if is_one_hot(Y_test):
            save(plot_confusion(out, X_test, Y_test, pred=pred, report=report, title=title).figure, "confusion.png")
        elif out.y.shape[1] == 1:
            save(plot_predictions(out, X_test, Y_test, time_series=time_series, pred=pred, report=report,
                                  baseline="naive" if time_series and report is not None and "naive" in
                                  report.predictions else "full", title=title).figure, "predictions.png")
        else:
            k = out.y.shape[1]                       # one panel per output (up to 10)
            shown = min(k, 10)
            cols = min(shown, 3)
            rows = -(-shown // cols)
            fig, axes = plt.subplots(rows, cols, figsize=((8 if time_series else 6) * cols, 4 * rows), squeeze=False,
                                     layout="constrained")
            for j, ax in enumerate(axes.flat):
                if j < shown:
                    plot_predictions(out, X_test, Y_test, ax, time_series=time_series, output=j, pred=pred,
                                     report=report, title=title)
                else:
                    ax.set_axis_off()
            save(fig, "predictions.png")
    if images:
        save(plot_images(out, X_train, title=f"{_prefix(out, title)}distilled inputs (m = {out.m})"), "images.png")
    return paths
