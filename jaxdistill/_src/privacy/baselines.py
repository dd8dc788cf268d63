"""Private baselines at a result's budget, for ``evaluate``: AdaSSP on a fresh release of the training rows, and
IBM's ``diffprivlib`` ``LinearRegression`` (pure ε-DP, the functional mechanism).

diffprivlib 0.6.6's ``LinearRegression`` computes the sensitivity of each squared input's coefficient from the
lower bound twice (``np.abs([bounds_X[0][i], bounds_X[0][i]])``, its issue #105; the fix, PR #110, is unmerged), so
on bounds that are not symmetric about 0 it adds too little noise, and its intercept's private centring shares one
budget slice between X and y (its issue #104). Both are avoided here by giving it symmetric bounds: the columns are
centred at the public bounds' midpoints, the intercept is a constant column (inside its bounds, [-1, 1]), and
``fit_intercept=False``. diffprivlib 0.6.6 also fails to import with scikit-learn ≥ 1.6 (its ``models.forest`` reads a
name scikit-learn removed); only its linear regression module is loaded, with that one module stubbed.
"""

from __future__ import annotations

import sys
import types

import numpy as np

#: what the evaluation table says of the diffprivlib row
DIFFPRIVLIB_NOTE = ("diffprivlib's LinearRegression is pure ε-DP (δ = 0, Laplace noise on the objective's "
                    "coefficients); its known sensitivity bug (IBM/differential-privacy-library issue #105: the "
                    "squared inputs' sensitivity reads the lower bound twice; unfixed in 0.6.6) is avoided by "
                    "symmetric bounds (columns centred at the public midpoints, intercept as a constant column, "
                    "fit_intercept=False).")


def diffprivlib_linear_regression():
    """diffprivlib's ``LinearRegression`` class, or None where diffprivlib is not installed."""
    try:
        from diffprivlib.models.linear_regression import LinearRegression
        return LinearRegression
    except ImportError as exc:
        if "diffprivlib" not in str(exc) and "sklearn" not in str(exc):
            raise
    if "diffprivlib" in sys.modules and "diffprivlib.models.forest" not in sys.modules:
        for name in [k for k in sys.modules if k.startswith("diffprivlib")]:
            del sys.modules[name]
    try:
        stub = types.ModuleType("diffprivlib.models.forest")
        stub.RandomForestClassifier = stub.DecisionTreeClassifier = None
        sys.modules.setdefault("diffprivlib.models.forest", stub)
        from diffprivlib.models.linear_regression import LinearRegression
        return LinearRegression
    except ImportError:
        return None


def diffprivlib_predict(Xtr, Ytr, Xte, privacy: dict, seed: int) -> np.ndarray | None:
    """Predictions (n_test, k) of diffprivlib's LinearRegression at the record's ε and bounds (symmetric: module
    docs), or None where diffprivlib is missing."""
    LinearRegression = diffprivlib_linear_regression()
    if LinearRegression is None:
        return None
    (xlo, xhi), (ylo, yhi) = (np.asarray(v, np.float64) for v in privacy["x_range"]), \
        (np.asarray(v, np.float64) for v in privacy["y_range"])
    cx, hx, cy, hy = (xlo + xhi) / 2, (xhi - xlo) / 2, (ylo + yhi) / 2, (yhi - ylo) / 2

    def design(X):
        return np.concatenate([np.clip(X, xlo, xhi) - cx, np.ones((X.shape[0], 1))], axis=1)

    Yc = np.clip(np.asarray(Ytr, np.float64), ylo, yhi) - cy
    preds = []
    for j in range(Yc.shape[1]):                  # one model per target, each at ε (they are separate releases)
        model = LinearRegression(epsilon=float(privacy["epsilon"]), bounds_X=(np.append(-hx, -1.0), np.append(hx, 1.0)),
                                 bounds_y=(-float(hy[j]), float(hy[j])), fit_intercept=False, random_state=seed)
        model.fit(design(np.asarray(Xtr, np.float64)), Yc[:, j])
        preds.append(model.predict(design(np.asarray(Xte, np.float64))) + cy[j])
    return np.stack(preds, axis=1)
