"""``jaxdistill.sklearn.DistillRegressor`` under scikit-learn's own estimator checks, and inside Pipeline,
GridSearchCV and cross_val_score."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import jaxdistill as jd  # noqa: E402
from jaxdistill import datasets  # noqa: E402
from jaxdistill.sklearn import DistillRegressor  # noqa: E402

FAST = dict(steps=40, T=10, Q=2)


# scikit-learn's checks fit on as few as 10 rows. With the defaults (m = 10, 10 % held out) four of its 53
# checks (check_fit2d_1feature, check_estimators_nan_inf, check_regressor_multioutput,
# check_regressors_no_decision_function) therefore meet "m = 10 must be smaller than the number of training
# rows" — a set of 10 points distilled from 9 rows is no distillation. With m = 3 and nothing held out every
# check runs and passes (array-API input is skipped by scikit-learn itself unless SCIPY_ARRAY_API is set).
@parametrize_with_checks([DistillRegressor(m=3, validation_fraction=0.0, **FAST)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def diabetes():
    X, Y = datasets.load("diabetes")
    return X, Y[:, 0]


def test_pipeline_and_cross_val_score(diabetes):
    X, y = diabetes
    pipe = make_pipeline(StandardScaler(), DistillRegressor(m=10, **FAST))
    scores = cross_val_score(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all(scores > 0.3)          # diabetes: ridge on all rows scores ~0.5
    fitted = pipe.fit(X, y)
    assert fitted[-1].distilled_X_.shape == (10, 10) and fitted.predict(X[:5]).shape == (5,)


def test_grid_search_over_m_and_the_fitted_attributes(diabetes):
    pd = pytest.importorskip("pandas")
    X, y = diabetes
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(10)])
    search = GridSearchCV(DistillRegressor(**FAST), {"m": [2, 10]}, cv=3).fit(df, pd.Series(y, name="target"))
    best = search.best_estimator_
    assert best.m in (2, 10) and set(search.cv_results_["param_m"]) == {2, 10}
    assert list(best.feature_names_in_) == list(df.columns) and best.n_features_in_ == 10
    assert best.result_.ok and best.inner_lr_ == best.result_.inner_lr
    assert best.distilled_y_.shape == (best.m,)
    with pytest.warns(jd.ProcedureBoundWarning):            # the estimator's set is bound to its GD procedure
        frame = best.distilled_frame()
    assert list(frame.columns) == [*df.columns, "target", "sample_weight"] and len(frame) == best.m
    np.testing.assert_allclose(best.score(df, y), 1 - np.sum((best.predict(df) - y) ** 2) / np.sum((y - y.mean()) ** 2))


def test_the_estimator_follows_scikit_learns_idioms_and_fails_loudly(diabetes):
    """random_state as scikit-learn takes it; m=None, misaligned pandas X and y and a failed run are refused (they
    returned from fit, paired rows by position or scored a number before); a budget that ran out warns."""
    pd = pytest.importorskip("pandas")
    from sklearn.exceptions import ConvergenceWarning
    X, y = diabetes
    with pytest.warns(ConvergenceWarning, match="raise steps"):
        a = DistillRegressor(m=5, random_state=np.random.RandomState(3), **FAST).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        b = DistillRegressor(m=5, random_state=np.random.RandomState(3), **FAST).fit(X, y)
    np.testing.assert_array_equal(a.distilled_X_, b.distilled_X_)        # the same state, the same run
    with pytest.warns(ConvergenceWarning):
        assert DistillRegressor(m=5, random_state=None, **FAST).fit(X, y).result_.ok
    with pytest.raises(ValueError, match="m must be a positive integer"):
        DistillRegressor(m=None, **FAST).fit(X, y)
    df, s = pd.DataFrame(X), pd.Series(y)
    with pytest.raises(ValueError, match="different indices"):
        DistillRegressor(m=5, **FAST).fit(df, s.sample(frac=1.0, random_state=0))
    rng = np.random.default_rng(1)                      # a run that blows up (as in test_stopping.py)
    Xr = rng.normal(size=(300, 6))
    yr = Xr @ rng.normal(size=6) + 0.1 * rng.normal(size=300)
    blown = DistillRegressor(m=10, steps=300, lr_x=1e6, lr_y=1e6)
    with pytest.raises(RuntimeError, match="diverged"):
        blown.fit(Xr, yr)
    assert not hasattr(blown, "result_")                # nothing to predict or score with


def test_a_grid_search_says_a_constant_column_once_and_by_its_name(diabetes):
    """Seven fits of the same columns (3 folds × 2 settings + the refit) say the data's constant column once, by the
    DataFrame's name (scikit-learn hands the estimator a bare array), not once per fit as 'column 10'."""
    import warnings
    pd = pytest.importorskip("pandas")
    X, Y = diabetes
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(X.shape[1])]).assign(always_one_in_this_test=1.0)
    search = GridSearchCV(DistillRegressor(m=5, steps=20), {"m": [4, 5]}, cv=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(frame, Y.ravel())
    said = [str(w.message) for w in caught if "constant column" in str(w.message)]
    assert len(said) == 1 and "'always_one_in_this_test'" in said[0], said
