"""Private releases and the sets made from them (#40): the calibration against μ-GDP's closed form, the release
against an independent numpy computation, one read per row, refusals, exactness of the private moment set against
scikit-learn, the federated sum, the guarantee in every export, and an empirical audit (canary, Clopper–Pearson) that
passes for the calibrated release and finds the leak when the noise is switched off or under-calibrated."""

import json
import math

import numpy as np
import pytest
from scipy import stats as st

import jaxdistill as jd
from jaxdistill import datasets
from jaxdistill.testing import noise_scale

pytest.importorskip("dp_accounting")

X, Y = datasets.load("diabetes")
XR, YR = (X.min(0), X.max(0)), (25.0, 346.0)       # stand-ins for public bounds (the columns' documented ranges)


def _gdp_delta(eps, mu):
    """δ(ε) of μ-GDP (Dong, Roth & Su 2022, Cor. 2.13): the exact curve of the Gaussian mechanism."""
    return st.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * st.norm.cdf(-eps / mu - mu / 2)


@pytest.mark.parametrize("eps,delta,share", [(0.1, 1e-6, 0.0), (1.0, 1e-5, 0.1), (10.0, 1e-8, 0.3)])
def test_noise_is_the_analytic_gaussian_of_the_claimed_budget(eps, delta, share):
    """Shares of a Gaussian composition add in μ² (μᵢ = √wᵢ/σ), so whatever the share the composition is μ-GDP with
    μ = 1/σ: the calibrated σ must meet δ(ε) ≤ δ, and be tight (a 1% smaller σ breaks it)."""
    rel = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=eps, delta=delta, key=0, lambda_share=share)
    g = rel.guarantee
    sigma = g["noise_multiplier"]
    assert _gdp_delta(eps, 1 / sigma) <= delta * (1 + 1e-6)
    assert _gdp_delta(eps, 1 / (0.99 * sigma)) > delta
    assert g["sensitivity"] == X.shape[1] + 2                       # max ‖[u, v, 1]‖² in the unit box
    assert rel.noise_std == pytest.approx(g["sensitivity"] * sigma / math.sqrt(1 - share))


def test_release_without_noise_is_the_clipped_second_moments():
    """An independent numpy computation of Σ zzᵀ, rows clipped to the bounds and scaled to the unit box."""
    xr = (np.percentile(X, 5, axis=0), np.percentile(X, 95, axis=0))      # some rows are clipped
    with noise_scale(0.0):
        rel = jd.private_statistics(X, Y, x_range=xr, y_range=(50, 300), epsilon=1.0, delta=1e-6, key=0)
    assert "NOT PRIVATE" in rel.guarantee
    u = (np.clip(X, *xr) - (xr[0] + xr[1]) / 2) / ((xr[1] - xr[0]) / 2)
    v = (np.clip(Y, 50, 300) - 175) / 125
    Z = np.concatenate([u, v, np.ones((len(X), 1))], axis=1)
    np.testing.assert_allclose(rel.A, Z.T @ Z, rtol=1e-12, atol=1e-9)
    assert rel.n == len(X)


class CountingSource(jd.ArraySource):
    def __init__(self, X, Y):
        super().__init__(X, Y)
        self.rows_read = 0

    def blocks(self, block_rows=1024):
        for Xb, Yb in super().blocks(block_rows):
            self.rows_read += len(Xb)
            yield Xb, Yb

    def take(self, rows):
        raise AssertionError("a private release must not pick rows")


def test_private_mode_reads_each_row_exactly_once():
    src = CountingSource(X, Y)
    rel = jd.private_statistics(src, x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6, key=0, block_rows=100)
    assert src.rows_read == len(X)
    for method in ("moments", "analytic"):
        jd.distill_private(rel, m=12, method=method)
    jd.distill_private(rel, m=12, method="bilevel", steps=20)
    assert src.rows_read == len(X)                  # the sets read the release, never the rows


@pytest.mark.parametrize("missing,match", [("x_range", "public bounds for the inputs"),
                                           ("y_range", "public bounds for the targets"),
                                           ("epsilon", "Pass epsilon"), ("delta", "Pass delta")])
def test_refuses_without_bounds_or_budget(missing, match):
    kw = dict(x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6)
    kw[missing] = None
    with pytest.raises(ValueError, match=match):
        jd.private_statistics(X, Y, **kw)


def test_refuses_bad_bounds_and_non_finite_rows_before_any_noise():
    with pytest.raises(ValueError, match="hi > lo"):
        jd.private_statistics(X, Y, x_range=(1.0, -1.0), y_range=YR, epsilon=1.0, delta=1e-6)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="row"):
        jd.private_statistics(Xn, Y, x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6)
    with pytest.raises(ValueError, match="PrivateStatistics"):
        jd.distill_private((X, Y), m=12)


def test_private_moment_set_is_ridge_on_the_release_for_sklearn():
    """Noise off and λ = 0: LinearRegression on the private moment set (with its weights) must equal
    LinearRegression on all rows — scikit-learn is the oracle; with noise, it equals ridge on the release."""
    LinearRegression = pytest.importorskip("sklearn.linear_model").LinearRegression
    with noise_scale(0.0):
        rel = jd.private_statistics(X, Y, x_range=(-1, 1), y_range=(0, 500), epsilon=1.0, delta=1e-6, key=0)
    out = jd.distill_private(rel, m=12, regularization=0.0)
    fit = LinearRegression().fit(out.X, out.Y, sample_weight=out.sample_weight)
    full = LinearRegression().fit(X, Y)
    np.testing.assert_allclose(fit.coef_, full.coef_, rtol=1e-8)
    np.testing.assert_allclose(fit.predict(X), full.predict(X), rtol=1e-9)
    rel = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6, key=3)
    out = jd.distill_private(rel, m=12)
    fit = LinearRegression().fit(out.X, out.Y, sample_weight=out.sample_weight)
    np.testing.assert_allclose(fit.predict(X), rel.predict_ridge(X), rtol=1e-9)
    np.testing.assert_allclose(out.predict(X), rel.predict_ridge(X), rtol=1e-9)


def test_federated_sum_adds_statistics_and_keeps_each_partys_guarantee():
    half = len(X) // 2
    with noise_scale(0.0):
        a = jd.private_statistics(X[:half], Y[:half], x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6, key=1)
        b = jd.private_statistics(X[half:], Y[half:], x_range=XR, y_range=YR, epsilon=3.0, delta=1e-6, key=2)
        whole = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6, key=0)
    np.testing.assert_allclose((a + b).A, whole.A, rtol=1e-12, atol=1e-9)
    a = jd.private_statistics(X[:half], Y[:half], x_range=XR, y_range=YR, epsilon=1.0, delta=1e-6, key=1)
    b = jd.private_statistics(X[half:], Y[half:], x_range=XR, y_range=YR, epsilon=3.0, delta=1e-6, key=2)
    total = a + b
    assert [p["epsilon"] for p in total.guarantee["parties"]] == [1.0, 3.0]
    assert total.noise_std == pytest.approx(math.hypot(a.noise_std, b.noise_std))
    out = jd.distill_private(total, m=12)
    assert "each party's rows" in out.valid_for
    with pytest.raises(ValueError, match="same bounds"):
        a + jd.private_statistics(X, Y, x_range=(-1, 1), y_range=YR, epsilon=1.0, delta=1e-6, key=0)


def test_federated_noise_equals_one_release_at_the_accountants_epsilon():
    """The how-to's number: three parties at ε = 1 (δ = 1e-8) add up to the noise of one release at ε = 0.56."""
    parts = [jd.private_statistics(X[i::3], Y[i::3], x_range=XR, y_range=YR, epsilon=1.0, delta=1e-8, key=i)
             for i in range(3)]
    total = parts[0] + parts[1] + parts[2]
    one = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=0.5612, delta=1e-8, key=0)
    assert total.noise_std == pytest.approx(one.noise_std, rel=2e-3)


def test_the_guarantee_travels_with_the_set(tmp_path):
    rel = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=0.5, delta=1e-6, key=0)
    out = jd.distill_private(rel, m=12)
    for key in ("epsilon", "delta", "neighbours", "x_range", "y_range", "mechanism", "accountant",
                "jaxdistill_version"):
        assert key in out.meta.privacy
    assert "ε = 0.5" in repr(out) and "ε = 0.5" in out.valid_for
    out.save(tmp_path / "set.npz")
    assert jd.load(tmp_path / "set.npz").meta.privacy == json.loads(json.dumps(out.meta.privacy))
    out.to_csv(tmp_path / "set.csv")
    side = json.loads((tmp_path / "set.csv.json").read_text())
    assert side["privacy"]["epsilon"] == 0.5 and side["privacy"]["x_range"][0] == XR[0].tolist()
    pytest.importorskip("pandas")
    assert out.to_pandas().attrs["privacy"]["delta"] == 1e-6
    assert "Not private" in jd.distill_moments(X, Y, m=12).privacy_note


#: in a fresh interpreter, in JAX's default float32 as a user runs it (the suite runs in float64): benchmarks/
#: bench_privacy.py's setting at ε = 10 (plain random rows as the analytic set's free part once gave seed 2 a set whose
#: own predict was 9 units off ridge on the release, R² 0.477 for 0.466, though the float64 check passed)
_FLOAT32_ANALYTIC = """
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, jaxdistill as jd
from jaxdistill import datasets
X, Y = datasets.load("diabetes")
Xtr, Ytr, Xte, _ = datasets.split("diabetes", X, Y, key=0)
worst = 0.0
for m in (1, 2, 5, 12):
    for key in range(10):
        rel = jd.private_statistics(Xtr, Ytr, x_range=(Xtr.min(0), Xtr.max(0)), y_range=(Ytr.min(), Ytr.max()),
                                    epsilon=10.0, delta=1 / len(Xtr) ** 2, key=key)
        out = jd.distill_private(rel, m=m, method="analytic", key=key)
        assert out.m == m
        ref = rel.predict_ridge(Xte)
        worst = max(worst, float(np.max(np.abs(out.predict(Xte) - ref)) / np.max(np.abs(ref))))
print(json.dumps(worst))
"""


def test_private_analytic_set_reproduces_ridge_on_the_release_at_any_m():
    """m ≥ k suffices (the KRR paper), also below the rank + 1 a moment set needs: the set's model is AdaSSP's, through
    the set's own predict in float32, over ten noise draws at each m."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_ENABLE_X64", "XLA_FLAGS")}
    got = subprocess.run([sys.executable, "-c", _FLOAT32_ANALYTIC], capture_output=True, text=True, env=env,
                         timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    assert json.loads(got.stdout.strip().splitlines()[-1]) < 1e-4      # float32 rounding of a ridge solve, not 3 %


def test_evaluate_compares_a_private_set_with_private_and_raw_baselines():
    """Every construction of one release stands for the same full-data ridge (its `full` row), and evaluate adds the
    non-private, AdaSSP and diffprivlib rows."""
    Xtr, Ytr, Xte, Yte = datasets.split("diabetes", X, Y, key=0)
    rel = jd.private_statistics(Xtr, Ytr, x_range=XR, y_range=YR, epsilon=3.0, delta=1e-6, key=0)
    reports = {m: jd.evaluate(jd.distill_private(rel, m=12, method=m), Xte, Yte, Xtr, Ytr)
               for m in ("moments", "analytic")}
    rows = {m: {r["id"]: r for r in rep.rows} for m, rep in reports.items()}
    assert rows["moments"]["full"]["mse"] == pytest.approx(rows["analytic"]["full"]["mse"], rel=1e-9)
    assert rows["moments"]["distilled"]["mse"] == pytest.approx(rows["moments"]["adassp"]["mse"], rel=0.5)
    assert {"nonprivate", "adassp"} <= set(rows["moments"])
    assert any("not private" in n for n in reports["moments"].notes)


def test_bilevel_and_random_feature_sets_from_the_release():
    rel = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=3.0, delta=1e-6, key=0)
    out = jd.distill_private(rel, m=12, method="bilevel", steps=300)
    assert out.ok and out.meta.privacy["set"] == "bilevel" and out.meta.bilevel.n_validation == 0
    ref = rel.predict_ridge(X)
    r2 = 1 - np.sum((out.predict(X) - ref) ** 2) / np.sum((ref - ref.mean()) ** 2)
    assert r2 > 0.9                              # it learns the release's ridge model, not the rows'
    fm = jd.RandomFourierFeatures(0, X.shape[1], 8, lengthscale=2.0)
    rel = jd.private_statistics(X, Y, x_range=XR, y_range=YR, epsilon=3.0, delta=1e-6, key=0, feature_map=fm)
    assert rel.guarantee["feature_norm"] == pytest.approx(math.sqrt(2))
    out = jd.distill_private(rel, m=1, method="analytic")
    assert out.meta.krr_paper.max_rel_WS_error < 1e-2
    with pytest.raises(ValueError, match="method='analytic'"):
        jd.distill_private(rel, m=12)


# ---------------------------------------------------------------------------------------------- the audit
def _clopper_pearson(k, n, alpha=0.05):
    lo = st.beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
    hi = st.beta.ppf(1 - alpha / 2, k + 1, n - k) if k < n else 1.0
    return lo, hi


def _audit(runs=1000, eps=1.0, delta=1e-5):
    """A lower bound on ε from ``runs`` releases with and without a canary (seeds 0…runs−1 and runs…2runs−1).

    The auditor knows every other row, so the best test is the likelihood ratio of the two Gaussian worlds: the
    released matrix and λ_min, each minus its value without the canary, projected on the canary's shift and
    weighted by 1/noise² (Neyman–Pearson). The threshold is chosen on the first half of the runs and the bound taken
    on the second: ε ≥ log((TPR_lo − δ)/FPR_hi) with 95% Clopper–Pearson limits."""
    rng = np.random.default_rng(0)
    base_x, base_y = rng.uniform(-0.5, 0.5, (40, 2)), rng.uniform(-0.5, 0.5, (40, 1))
    canary_x, canary_y = np.ones((1, 2)), np.ones((1, 1))           # a corner of the public box
    kw = dict(x_range=(-1, 1), y_range=(-1, 1), epsilon=eps, delta=delta)
    with noise_scale(0.0):
        r0 = jd.private_statistics(base_x, base_y, key=0, **kw)
        r1 = jd.private_statistics(np.vstack([base_x, canary_x]), np.vstack([base_y, canary_y]), key=0, **kw)
    iu = np.triu_indices(r0.A.shape[0])
    shift_a, shift_l = (r1.A - r0.A)[iu], r1.lambda_min - r0.lambda_min
    with noise_scale(1.0):                           # the claimed noise: the weights of the likelihood ratio
        claimed = jd.private_statistics(base_x, base_y, key=0, **kw)
    wa, wl = shift_a / claimed.noise_std ** 2, shift_l / claimed.lambda_noise_std ** 2

    def score(X_, Y_, seed):
        r = jd.private_statistics(X_, Y_, key=seed, **kw)
        return (r.A - r0.A)[iu] @ wa + (r.lambda_min - r0.lambda_min) * wl

    without = np.array([score(base_x, base_y, s) for s in range(runs)])
    with_c = np.array([score(np.vstack([base_x, canary_x]), np.vstack([base_y, canary_y]), runs + s)
                       for s in range(runs)])
    h = runs // 2
    grid = np.quantile(np.concatenate([without[:h], with_c[:h]]), np.linspace(0.5, 0.999, 200))

    def bound(w, c, t):
        fpr_hi = _clopper_pearson(int(np.sum(w >= t)), len(w))[1]
        tpr_lo = _clopper_pearson(int(np.sum(c >= t)), len(c))[0]
        return math.log(max(tpr_lo - delta, 1e-300) / fpr_hi)

    t = max(grid, key=lambda t: bound(without[:h], with_c[:h], t))
    return bound(without[h:], with_c[h:], t)


def test_audit_lower_bound_stays_below_the_claimed_epsilon():
    assert _audit(eps=1.0) < 1.0


@pytest.mark.parametrize("factor", [0.0, 0.1])
def test_audit_finds_the_leak_when_noise_is_off_or_under_calibrated(factor):
    with noise_scale(factor):
        assert _audit(eps=1.0) > 1.0
