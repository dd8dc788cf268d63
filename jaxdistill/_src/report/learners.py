"""Cross-learner evaluation: other learners (scikit-learn estimators) trained on the distilled set, on every
same-size baseline and on all training rows, scored on the held-out rows.

What a user takes away from a distilled set is its rows: this measures whether *their* learner trains well on
them. Each training set is used in original units with its sample weights (the distilled set's ``weights``; n/m
for the rows of a random subset or coreset, each of which stands for n/m training rows; none for the full data),
passed to ``fit`` where the learner accepts them (through a ``Pipeline`` or ``TransformedTargetRegressor`` to
their last step). Each learner's score on a set is also given as a ratio to its own full-data score.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from jaxdistill._src.report.scores import scores

#: the default learners' names, in table order
DEFAULT_LEARNERS = ("LinearRegression", "RidgeCV", "HistGradientBoosting", "KNeighbors", "SVR", "MLP")


def default_learners() -> dict:
    """The learners ``evaluate(..., learners=True)`` trains: linear least squares and cross-validated ridge, and
    four learners that are not linear, each as a careful user would set it up (inputs and, for SVR and the MLP,
    targets standardised; fixed seeds):

    ``LinearRegression``, ``RidgeCV``, ``HistGradientBoostingRegressor``, ``KNeighborsRegressor`` (5 neighbours),
    ``SVR`` (RBF) and ``MLPRegressor`` (one hidden layer of 64). Needs scikit-learn. On small training sets every
    learner's neighbour count and minimum leaf size are scaled to the rows (`adapt_to_rows`).
    """
    try:
        from sklearn.compose import TransformedTargetRegressor
        from sklearn.ensemble import HistGradientBoostingRegressor
        from sklearn.linear_model import LinearRegression, RidgeCV
        from sklearn.neighbors import KNeighborsRegressor
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import SVR
    except ImportError:
        raise ImportError("evaluate(..., learners=True) trains scikit-learn learners: pip install scikit-learn "
                          "(or jaxdistill[data]).") from None

    def scaled_target(est):
        return TransformedTargetRegressor(regressor=make_pipeline(StandardScaler(), est), transformer=StandardScaler())

    return {"LinearRegression": LinearRegression(), "RidgeCV": RidgeCV(alphas=np.logspace(-3, 3, 13)),
            "HistGradientBoosting": HistGradientBoostingRegressor(random_state=0),
            "KNeighbors": make_pipeline(StandardScaler(), KNeighborsRegressor()),
            "SVR": scaled_target(SVR()),
            "MLP": scaled_target(MLPRegressor(hidden_layer_sizes=(64,), max_iter=500, random_state=0))}


def as_learners(learners) -> dict:
    """``learners`` as {name: estimator}: ``True`` or ``"default"`` → `default_learners`; a dict as given; a list
    of estimators named by their class (``_2``, ``_3`` … for repeats); ``None`` / ``False`` / ``()`` → none."""
    if learners is None or learners is False:
        return {}
    if learners is True or (isinstance(learners, str) and learners == "default"):
        return default_learners()
    if isinstance(learners, str):
        raise ValueError(f"learners must be True, 'default', a list of scikit-learn estimators or a dict of them, got "
                         f"{learners!r}.")
    if isinstance(learners, dict):
        named = dict(learners)
    else:
        named = {}
        for est in learners:
            base = type(est).__name__
            name, k = base, 2
            while name in named:
                name, k = f"{base}_{k}", k + 1
            named[name] = est
    for name, est in named.items():
        if not (hasattr(est, "fit") and hasattr(est, "predict") and hasattr(est, "get_params")):
            raise ValueError(f"learner {name!r} is {type(est).__name__}, not a scikit-learn estimator (it needs fit, "
                             "predict and get_params).")
    return named


def _weight_param(est) -> str | None:
    """The keyword under which ``est.fit`` takes sample weights (routed through a TransformedTargetRegressor and
    a Pipeline to the last step), or None where the learner takes none."""
    prefix = ""
    if type(est).__name__ == "MultiOutputRegressor":      # passes sample_weight to each target's estimator
        return "sample_weight" if _weight_param(est.estimator) == "sample_weight" else None
    while True:
        if hasattr(est, "regressor") and type(est).__name__ == "TransformedTargetRegressor":
            est = est.regressor
        elif hasattr(est, "steps"):
            name, est = est.steps[-1]
            prefix += f"{name}__"
        else:
            break
    return prefix + "sample_weight" if "sample_weight" in inspect.signature(est.fit).parameters else None


def adapt_to_rows(est, rows: int):
    """``est`` with settings that cannot work on ``rows`` rows scaled to them, the same for every training set of
    that size: a neighbour count above the rows becomes the rows; a minimum leaf size over a tenth of the rows (a
    boosted model's default of 20 cannot split 20 rows) becomes a tenth (at least 1)."""
    for key, value in est.get_params().items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if key.endswith("n_neighbors") and value > rows:
            est.set_params(**{key: rows})
        elif key.endswith("min_samples_leaf") and value * 10 > rows:
            est.set_params(**{key: max(1, rows // 10)})
    return est


def _multi_output(est):
    """``est`` itself if it fits several targets at once, else one clone per target (``MultiOutputRegressor``)."""
    from sklearn.multioutput import MultiOutputRegressor
    try:
        from sklearn.utils import get_tags
        native = get_tags(est).target_tags.multi_output
    except (ImportError, AttributeError):                 # scikit-learn < 1.6
        native = bool(est._get_tags().get("multioutput", False))
    return est if native else MultiOutputRegressor(est)


def _fit_predict(est, X, y, w, X_test):
    """Fit a clone of ``est`` on (X, y) with weights ``w`` where it takes them; predictions on X_test (n, k)."""
    from sklearn.base import clone
    est = adapt_to_rows(clone(est), X.shape[0])
    if y.shape[1] == 1:
        y = y[:, 0]
    else:
        est = _multi_output(est)
    kw = {}
    param = None if w is None else _weight_param(est)
    if param is not None:
        kw[param] = w
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(converge|Maximum iterations).*")
        est.fit(X, y, **kw)
    pred = np.asarray(est.predict(X_test), np.float64)
    return pred.reshape(X_test.shape[0], -1), param is not None


def learner_rows(learners: dict, sets: list, X_test, Y_test) -> tuple[list[dict], list[str]]:
    """Train every learner on every training set and score it on (X_test, Y_test) (original units).

    Args:
      learners: {name: scikit-learn estimator} (`as_learners`).
      sets: [(set id, label, points, [(X, Y, w or None), …] one per draw)], the full data (id ``"full"``) among them.
      X_test, Y_test: held-out rows (n, d), (n, k).

    Returns:
      (rows, notes): a row per learner and set with ``learner``, ``set``, ``method``, ``points``, ``mse`` /
      ``mse_std``, ``r2`` / ``r2_std`` (over draws), ``vs_full`` (R² ÷ the learner's full-data R²; None where that
      is ≤ 0) and ``weighted`` (whether the learner took the weights); notes on learners that failed.
    """
    rows, notes = [], []
    for name, est in learners.items():
        mine = []
        for set_id, label, points, draws in sets:
            try:
                fits = [_fit_predict(est, X, Y, w, X_test) for X, Y, w in draws]
            except Exception as exc:  # noqa: BLE001 - a learner that cannot train on a set is reported, not fatal
                notes.append(f"{name} could not be trained on the {label} ({type(exc).__name__}: {exc}).")
                continue
            s = np.array([scores(p, Y_test) for p, _ in fits])
            mine.append({"learner": name, "set": set_id, "method": label, "points": points,
                         "mse": float(s[:, 0].mean()), "mse_std": float(s[:, 0].std()), "r2": float(s[:, 1].mean()),
                         "r2_std": float(s[:, 1].std()), "weighted": bool(fits[0][1])})
        full = next((r["r2"] for r in mine if r["set"] == "full"), None)
        for r in mine:
            r["vs_full"] = r["r2"] / full if full is not None and full > 0 else None
        rows += mine
    return rows, notes


def learner_markdown(rows: list[dict]) -> list[str]:
    """The learner rows as a markdown table: one line per learner, one column per training set, each cell
    "R² (÷ full)"."""
    if not rows:
        return []
    sets, learners = [], []
    for r in rows:
        if (r["set"], r["method"], r["points"]) not in sets:
            sets.append((r["set"], r["method"], r["points"]))
        if r["learner"] not in learners:
            learners.append(r["learner"])
    cell = {(r["learner"], r["set"]): r for r in rows}
    out = ["Other learners trained on each set: held-out R² (its ratio to the same learner on all training rows)", "",
           "| learner | " + " | ".join(f"{label} ({points})" for _, label, points in sets) + " |",
           "|---|" + "---:|" * len(sets)]
    for name in learners:
        cells = []
        for set_id, _, _ in sets:
            r = cell.get((name, set_id))
            if r is None:
                cells.append("—")
                continue
            spread = r["r2_std"] > 1e-9 * max(1.0, abs(r["r2"]))    # rounding is no spread (deterministic sets)
            txt = f"{r['r2']:.3f} ± {r['r2_std']:.2g}" if spread else f"{r['r2']:.3f}"
            cells.append(txt + (f" ({r['vs_full']:.2f})" if r["vs_full"] is not None and set_id != "full" else ""))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out
