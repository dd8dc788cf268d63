"""A scikit-learn estimator over [`distill`][jaxdistill.distill] (needs scikit-learn: ``pip install
"jaxdistill[data]"``).

[`DistillRegressor`][jaxdistill.sklearn.DistillRegressor] follows scikit-learn's estimator contract (checked by its own
``check_estimator`` suite in this project's tests) and works inside ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``::

    from sklearn.model_selection import GridSearchCV
    from jaxdistill.sklearn import DistillRegressor

    search = GridSearchCV(DistillRegressor(steps=500), {"m": [5, 10, 20]}, cv=3).fit(X, y)
    search.best_estimator_.distilled_frame()      # the distilled set, with X's column names

``fit`` distils, ``predict`` is the model trained on the distilled points by their own procedure (T steps of
gradient descent with the learned η̃), ``score`` is R².
"""

from __future__ import annotations

import numbers
import re
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from jaxdistill._src.api import distill
from jaxdistill._src.data.schema import check_aligned as _check_aligned

__all__ = ["DistillRegressor"]


#: warnings about the data (constant columns) this process has shown: a grid search or cross-validation fits the
#: same columns again and again, and the message would repeat each time
_SHOWN: set[str] = set()
_CONSTANT = re.compile(r"^[XY] has \d+ constant column")


def _in_joblib_worker() -> bool:
    """In a joblib (loky) worker process of a parallel search: the parent holds the same data and says it."""
    import multiprocessing
    return multiprocessing.current_process().name.startswith("LokyProcess")


def _say(w: warnings.WarningMessage, feature_names) -> None:
    """Pass on a warning ``distill`` gave inside ``fit``. A data warning (constant columns) names the columns by
    their names where the estimator saw them (``validate_data`` hands ``distill`` a bare array), is said once per
    process, and not from joblib's workers; every other warning as it came."""
    message = str(w.message)
    if not _CONSTANT.match(message):
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return
    if feature_names is not None and message.startswith("X"):
        message = re.sub(r"\bcolumn (\d+)\b", lambda k: repr(str(feature_names[int(k.group(1))])), message)
    if message in _SHOWN or _in_joblib_worker():
        return
    _SHOWN.add(message)
    warnings.warn(message, w.category, stacklevel=3)


class DistillRegressor(RegressorMixin, BaseEstimator):
    """Dataset distillation as a scikit-learn regressor.

    Args:
      m: number of distilled points (must be smaller than the number of training rows).
      steps: outer-step budget (the stopping rule usually ends the run earlier).
      T: inner gradient-descent steps of the procedure the set is distilled for.
      Q: initialisations θ₀ per outer step.
      lambda_inner: λ_I, or ``"auto"`` (default: chosen by generalised cross-validation on the training rows and
        targeted by the distilled set; see [`DistillConfig`][jaxdistill.DistillConfig]).
      lambda_outer: λ_O.
      lr_x: outer learning rate of Adam on X̃.
      lr_y: outer learning rate of Adam on Ỹ.
      lr_eta: outer learning rate of gradient descent on η̃.
      validation_fraction: share of the rows held out to report the held-out loss.
      patience: evaluations without improvement before the run ends (None: run all steps).
      model: a jaxdistill inner model (default: the linear model).
      inner_solver: a jaxdistill inner solver (default: chosen from the model and data).
      random_state: the run's seed, as scikit-learn takes it: an integer (the whole run is a function of it), a
        ``numpy.random.RandomState`` (a seed is drawn from it) or None (a fresh seed from numpy's global state).

    Raises (in ``fit``):
      ValueError: ``m`` that is not a positive integer below the number of rows; pandas ``X`` and ``y`` with
        different indices (their rows would be paired by position); bad data or settings, as ``distill`` says.
      FloatingPointError, RuntimeError: a run that failed (status ``nonfinite``; ``diverged``, ``no_progress``,
        ``unstable``): there is no model to predict with. A run whose step budget ran out while it still improved
        warns with scikit-learn's ``ConvergenceWarning``.

    Fitted attributes:
      result_: the [`DistillOutput`][jaxdistill.DistillOutput] (status, history, run information, ``save``).
      distilled_X_, distilled_y_: the distilled set in the original units (m, d) and (m,) or (m, d_out).
      inner_lr_: the learned inner learning rate η̃.
      lambda_inner_: the λ_I used (the chosen one with ``lambda_inner="auto"``).
      n_features_in_, feature_names_in_: as for every scikit-learn estimator.

    Examples:
      >>> from jaxdistill import datasets
      >>> from jaxdistill.sklearn import DistillRegressor
      >>> X, Y = datasets.load("diabetes")
      >>> est = DistillRegressor(m=10, steps=100).fit(X, Y.ravel())
      >>> est.predict(X[:3]).shape, est.distilled_X_.shape
      ((3,), (10, 10))
    """

    def __init__(self, m: int = 10, *, steps: int = 5000, T: int = 50, Q: int = 8, lambda_inner: float | str = "auto",
                 lambda_outer: float = 1e-3, lr_x: float = 0.01, lr_y: float = 0.01, lr_eta: float = 0.01,
                 validation_fraction: float = 0.1, patience: int | None = 10, model=None, inner_solver=None,
                 random_state: int = 0):
        self.m, self.steps, self.T, self.Q = m, steps, T, Q
        self.lambda_inner, self.lambda_outer = lambda_inner, lambda_outer
        self.lr_x, self.lr_y, self.lr_eta = lr_x, lr_y, lr_eta
        self.validation_fraction, self.patience = validation_fraction, patience
        self.model, self.inner_solver, self.random_state = model, inner_solver, random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True          # Y of shape (n, d_out) is distilled as one set
        tags.target_tags.single_output = True
        return tags

    def fit(self, X, y):
        """Distil (X, y) into ``m`` points. Returns self (raises if the run failed; see the class docs)."""
        if isinstance(self.m, bool) or not isinstance(self.m, numbers.Integral) or self.m < 1:
            raise ValueError(f"m must be a positive integer (the number of distilled points), got {self.m!r}.")
        _check_aligned(getattr(X, "index", None) if hasattr(X, "columns") else None,
                      getattr(y, "index", None) if hasattr(y, "iloc") else None)
        y_names = getattr(y, "columns", None)
        y_names = [getattr(y, "name", None)] if y_names is None else list(y_names)
        X, y = validate_data(self, X, y, y_numeric=True, multi_output=True, ensure_min_samples=2,
                             dtype=[np.float64, np.float32])
        seed = self.random_state
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
            seed = int(check_random_state(seed).randint(np.iinfo(np.int32).max))
        with warnings.catch_warnings(record=True) as caught:      # said once, with names (see _say)
            warnings.simplefilter("always")
            out = distill(X, y, m=self.m, key=int(seed), steps=self.steps, T=self.T, Q=self.Q,
                          lambda_inner=self.lambda_inner, lambda_outer=self.lambda_outer, lr_x=self.lr_x,
                          lr_y=self.lr_y, lr_eta=self.lr_eta, validation_fraction=self.validation_fraction,
                          patience=self.patience, model=self.model, inner_solver=self.inner_solver, progress=False,
                          raise_on_failure=True)
        for w in caught:
            _say(w, getattr(self, "feature_names_in_", None))
        if out.status == "budget":
            warnings.warn(f"DistillRegressor: the step budget ({self.steps}) ran out while the distilled set was "
                          "still improving; raise steps for a converged set.", ConvergenceWarning, stacklevel=2)
        names = {}                                       # the schema keeps the names (validate_data took them)
        if hasattr(self, "feature_names_in_"):
            names["feature_names"] = tuple(str(c) for c in self.feature_names_in_)
        if all(n is not None for n in y_names) and len(y_names) == out.y.shape[1]:
            names["target_names"] = tuple(str(n) for n in y_names)
        if names:
            out = out.replace(schema=out.schema.replace(**names))
        self.result_ = out
        self.distilled_X_ = out.X
        self.distilled_y_ = out.Y[:, 0] if np.ndim(y) == 1 else out.Y
        self.inner_lr_ = out.inner_lr
        self.lambda_inner_ = out.lambda_inner
        return self

    def predict(self, X):
        """Predictions of the model trained on the distilled set by its procedure, (n,) or (n, d_out)."""
        check_is_fitted(self, "result_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self.result_.predict(X)

    def distilled_frame(self):
        """The distilled set as a ``pandas.DataFrame`` with the training columns' names, then the target(s) and
        ``sample_weight`` (``DistillOutput.to_pandas``). The estimator's set is bound to its GD procedure: this warns
        (``jaxdistill.ProcedureBoundWarning``) that other learners are not expected to train well on it."""
        check_is_fitted(self, "result_")
        return self.result_.to_pandas()
