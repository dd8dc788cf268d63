"""What is distilled and what it is compared with (#27): ``lambda_inner="auto"`` (GCV on the sufficient statistics,
checked against an explicit hat matrix and scikit-learn's RidgeCV), the small wide set where the least-squares
target overfits, coreset baselines (checked against scikit-learn's KMeans and an explicit hat matrix), and the
held-out quality check of a finished run."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes

import jaxdistill as jd
from jaxdistill import coresets, datasets

FAST = dict(steps=300, eval_every=50, progress=False)


@pytest.fixture(scope="module")
def diabetes():
    return load_diabetes(return_X_y=True)


def _standardised(X, y):
    F = (X - X.mean(0)) / X.std(0)
    Y = ((y - y.mean()) / y.std())[:, None]
    return F, Y


# ------------------------------------------------------------------ GCV on the statistics
def test_gcv_scores_equal_an_explicit_hat_matrix(diabetes):
    X, y = diabetes
    F, Y = _standardised(X[:40], y[:40])
    n = F.shape[0]
    choice = jd.choose_ridge(F.T @ F / n, F.T @ Y / n, float(np.sum(Y ** 2)) / n, n, centred=True)
    for i in (0, 20, 45, 70, 90):
        lam = choice.grid[i]
        H = F @ np.linalg.solve(F.T @ F + n * lam * np.eye(F.shape[1]), F.T)   # the hat matrix, row by row
        gcv = np.sum((Y - H @ Y) ** 2) / n / (1 - (np.trace(H) + 1) / n) ** 2
        assert choice.scores[i] == pytest.approx(gcv, rel=1e-9)
    assert choice.scores[choice.grid == choice.lam][0] == pytest.approx(np.min(choice.scores), rel=1e-12)


@pytest.mark.parametrize("rows", [25, 442])
def test_auto_lambda_matches_scikit_learn_ridgecv(diabetes, rows):
    """The λ distill chooses (all rows, none held out) against RidgeCV's efficient leave-one-out on the same
    grid: two criteria, so not always the same grid value (on 25 rows GCV picks 0.13, leave-one-out 0.04), but
    within half a decade, and held-out predictions as good (on 350 rows equal to 0.002; on these 25 rows GCV's
    R² is 0.29, leave-one-out's 0.22)."""
    from sklearn.linear_model import RidgeCV
    X, y = diabetes
    perm = np.random.default_rng(1).permutation(len(y))
    tr, te = perm[:rows] if rows < len(y) else perm[:350], perm[350:] if rows == len(y) else perm[rows:]
    out = jd.distill(X[tr], y[tr], m=5, validation_fraction=0.0, **FAST)
    assert out.meta.lambda_choice["method"] == "gcv" and out.lambda_inner == out.meta.lambda_choice["lambda"]
    F, Y = _standardised(X[tr], y[tr])
    n = F.shape[0]
    grid = jd.choose_ridge(F.T @ F / n, F.T @ Y / n, float(np.sum(Y ** 2)) / n, n).grid
    sk = RidgeCV(alphas=n * grid).fit(F, Y.ravel())                  # sklearn's α = nλ
    assert abs(np.log10(out.lambda_inner) - np.log10(sk.alpha_ / n)) <= 0.5 + 1e-9
    rep = jd.evaluate(out, X[te], y[te], X[tr], y[tr], n_subsets=2, coresets=())
    pred_sk = sk.predict((X[te] - X[tr].mean(0)) / X[tr].std(0)) * y[tr].std() + y[tr].mean()
    r2_sk = 1 - np.sum((pred_sk - y[te]) ** 2) / np.sum((y[te] - y[te].mean()) ** 2)
    if rows < 100:
        assert rep.row("full")["r2"] >= r2_sk - 0.02
    else:
        assert rep.row("full")["r2"] == pytest.approx(r2_sk, abs=0.002)          # the target: ridge with λ on all rows
    assert any("generalised cross-validation" in note for note in rep.notes)


def test_small_wide_set_default_beats_the_mean_random_subset(diabetes):
    """25 rows of a 10-feature set: least squares over all rows overfits; the default distilled set (λ by GCV)
    is at least as good as the mean random subset of the same size, trained the same way."""
    X, y = diabetes
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[:25], perm[25:]
    for m in (5, 10):
        out = jd.distill(X[tr], y[tr], m=m, key=0, progress=False)
        assert out.ok and out.meta.lambda_choice["method"] == "gcv"
        rep = jd.evaluate(out, X[te], y[te], X[tr], y[tr], coresets=())
        assert rep.row("distilled")["r2"] >= rep.row("subset")["r2"]
        assert rep.row("distilled")["r2"] >= rep.row("subset_ridge")["r2"]
        assert rep.row("distilled")["r2"] > 0.3                  # 0.7's λ_I = 1e-3 target scored 0.02 at m = 5
    fixed = jd.distill(X[tr], y[tr], m=5, key=0, lambda_inner=1e-3, progress=False)
    assert fixed.meta.lambda_choice == {"method": "given", "lambda": 1e-3}
    assert jd.evaluate(fixed, X[te], y[te], X[tr], y[tr], coresets=()).row("distilled")["r2"] < 0.2


def test_auto_lambda_falls_back_and_says_so_for_nonlinear_models(diabetes):
    import flax.linen as nn
    X, y = diabetes

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.tanh(nn.Dense(8)(x)))

    out = jd.distill(X[:200], y[:200], m=5, model=jd.FlaxModel(MLP()), steps=20, eval_every=10, progress=False)
    assert out.lambda_inner == 1e-3 and out.meta.lambda_choice["method"] == "fallback"
    assert "not linear" in out.meta.lambda_choice["why"]
    rep = jd.evaluate(out, X[400:], y[400:], n_inits=2)
    assert any("not linear" in note for note in rep.notes)


def test_ridge_objective_value_equals_the_direct_ridge_loss(diabetes):
    X, y = diabetes
    model = jd.LinearModel()
    lam = 0.3
    obj = jd.FullDataLoss(ridge=lam).with_statistics(*_stats(X, y))
    th = np.random.default_rng(0).normal(size=(10, 1))
    F, Y = X, y[:, None]
    direct = 0.5 / len(y) * np.sum((F @ th - Y) ** 2) + 0.5 * lam * np.sum(th ** 2)
    assert float(obj.value(th)) == pytest.approx(direct, rel=1e-10)
    # its minimiser is the ridge model
    ridge = np.linalg.solve(F.T @ F / len(y) + lam * np.eye(10), F.T @ Y / len(y))
    assert float(obj.value(ridge)) <= float(obj.value(ridge + 1e-3)) and model.linear_in_params


def _stats(X, y):
    n = len(y)
    return X.T @ X / n, X.T @ y[:, None] / n, float(y @ y) / n, n


# ------------------------------------------------------------------ coresets
def test_leverage_scores_are_the_hat_matrix_diagonal(diabetes):
    X, _ = diabetes
    F = X[:60]
    lam = 0.01
    H = F @ np.linalg.solve(F.T @ F + 60 * lam * np.eye(10), F.T)
    np.testing.assert_allclose(coresets.leverage_scores(F, lam), np.diag(H), rtol=1e-9, atol=1e-12)
    # with FᵀF already summed (evaluate passes its first pass's): the same scores, F read once
    np.testing.assert_allclose(coresets.leverage_scores(F, lam, gram=F.T @ F), np.diag(H), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match=r"gram must be FᵀF of shape \(10, 10\)"):
        coresets.leverage_scores(F, lam, gram=F @ F.T)
    rows = coresets.leverage_rows(F, 8, lam, np.random.default_rng(0))
    assert len(set(rows.tolist())) == 8


def test_kmeans_matches_scikit_learn_and_kcenter_covers_every_cluster():
    from sklearn.cluster import KMeans
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(6, 3))
    X = np.concatenate([c + rng.normal(size=(50, 3)) for c in centres])
    Y = np.repeat(np.arange(6.0), 50)[:, None]
    C, Yc = coresets.kmeans_centroids(X, Y, 6, np.random.default_rng(1))
    sk = KMeans(6, n_init=10, random_state=0).fit(X)
    inertia = np.sum(np.min(((X[:, None] - C[None]) ** 2).sum(-1), axis=1))
    assert inertia <= 1.001 * sk.inertia_
    assert sorted(Yc.ravel().tolist()) == pytest.approx(list(range(6)))    # each centroid: its cluster's target
    picked = coresets.kcenter_rows(X, 6, np.random.default_rng(2))
    assert sorted(set((picked // 50).tolist())) == list(range(6))


def test_kcenter_over_row_blocks_equals_the_direct_greedy_rule():
    """More rows than one block: the blockwise passes pick what the textbook rule picks (each row the farthest,
    by exact squared distance, from those already picked), from an array and from standardised rows read on
    demand alike."""
    from jaxdistill._src.data.arrays import Standardizer, StandardRows
    rng = np.random.default_rng(3)
    X = rng.normal(size=(70_000, 3)) * [1.0, 5.0, 0.2] + [3.0, -1.0, 0.0]      # more than one block (65,536)
    want = [int(np.random.default_rng(4).integers(X.shape[0]))]
    d2 = ((X - X[want[0]]) ** 2).sum(1)
    for _ in range(1, 7):
        want.append(int(d2.argmax()))
        d2 = np.minimum(d2, ((X - X[want[-1]]) ** 2).sum(1))
    assert coresets.kcenter_rows(X, 7, np.random.default_rng(4)).tolist() == want
    std = Standardizer(np.zeros(3), np.ones(3), np.zeros(1), np.ones(1))
    assert coresets.kcenter_rows(StandardRows(X, std), 7, np.random.default_rng(4)).tolist() == want


def test_coresets_and_standardisation_take_dataframes_as_their_values():
    import pandas as pd

    from jaxdistill._src.data.arrays import Standardizer
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    df = pd.DataFrame(X, columns=["std", "shape", "x"])         # names a duck-typed check could mistake
    want = coresets.kcenter_rows(X, 5, np.random.default_rng(0)).tolist()
    assert coresets.kcenter_rows(df, 5, np.random.default_rng(0)).tolist() == want
    Xs, _ = coresets.coreset("kcenter", df, X[:, :1], X, 5, 0.0, 0)
    np.testing.assert_array_equal(Xs, X[want])
    std = Standardizer(np.ones(3), 2 * np.ones(3), np.zeros(1), np.ones(1))
    out = std.x(df)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, (X - 1.0) / 2.0)


def test_a_sentinel_beyond_the_first_block_of_training_rows_is_named(diabetes):
    X, y = diabetes
    out = jd.distill(X[:300], y[:300], m=8, key=0, **FAST)
    reps = -(-70_000 // 300)
    Xtr, ytr = np.tile(X[:300], (reps, 1))[:70_000], np.tile(y[:300], reps)[:70_000]
    Xtr[69_999, 2] = 1e200                                    # a sentinel: beyond what the dtype can square
    with pytest.raises(ValueError, match="training row 69999"):
        jd.evaluate(out, X[300:], y[300:], Xtr, ytr, n_subsets=2, coresets=())


def test_evaluate_reports_coresets_trained_like_the_subsets(diabetes):
    X, y = diabetes
    out = jd.distill(X[:300], y[:300], m=8, key=0, **FAST)
    rep = jd.evaluate(out, X[300:], y[300:], X[:300], y[:300], n_subsets=3, n_coreset_draws=2)
    for kind in ("leverage", "kmeans", "kcenter"):
        row = rep.row(kind)
        assert row["points"] == 8 and "GD steps" in row["procedure"] and np.isfinite(row["r2"])
    assert rep.row("full_cv")["r2"] == pytest.approx(rep.row("full")["r2"], abs=0.01)   # auto λ ≈ the CV row's
    only = jd.evaluate(out, X[300:], y[300:], X[:300], y[:300], n_subsets=3, coresets=["kmeans"])
    assert "kmeans" in only.ids and "leverage" not in only.ids
    with pytest.raises(ValueError, match="Unknown coreset"):
        jd.evaluate(out, X[300:], y[300:], X[:300], y[:300], coresets=["herd"])


# ------------------------------------------------------------------ the held-out quality check
def test_a_set_worse_than_random_rows_says_so():
    """Noise-free targets on 3 features: any 6 real rows give the exact model; a set trained for one step
    at a tiny rate does not, and the run says so (a QualityWarning, and the numbers in meta.bilevel.quality)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    with pytest.warns(jd.QualityWarning, match="random subset of 6 training rows"):
        out = jd.distill(X, y, m=6, steps=1, eval_every=1, lr_x=1e-6, lr_y=1e-6, lambda_inner=1e-6,
                         init="random", progress=False)
    q = out.meta.bilevel.quality
    assert q["distilled_loss"] > q["subset_mean_loss"] and q["warning"]


def test_a_good_run_passes_the_quality_check(diabetes):
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("error", jd.QualityWarning)
        out = jd.distill(X[:350], y[:350], m=10, key=0, progress=False)
    q = out.meta.bilevel.quality
    assert q["distilled_loss"] < q["subset_mean_loss"] and "warning" not in q and q["held_out_rows"] == 35


def test_evaluate_takes_a_typed_key_as_the_same_draws_as_its_raw_key(diabetes):
    """A typed key (``jax.random.key``) draws its subsets, θ₀ and coreset seeds through ``jax.random``; the raw key
    with the same bits through the host's Threefry: every row is the same (0.8's evaluate raised a TypeError)."""
    import jax
    X, y = diabetes
    out = jd.distill(X[:300], y[:300], m=10, key=0, model=jd.LinearModel(init_scale=0.5), **FAST)
    kw = dict(n_subsets=3, n_coreset_draws=2, n_inits=4)
    typed = jd.evaluate(out, X[300:], y[300:], X[:300], y[:300], key=jax.random.key(5), **kw)
    raw = jd.evaluate(out, X[300:], y[300:], X[:300], y[:300], key=jax.random.PRNGKey(5), **kw)
    assert typed.ids == raw.ids
    for a, b in zip(typed.rows, raw.rows, strict=True):
        assert a == b, a["id"]


def test_coresets_and_ridge_choice_at_their_edges():
    """#43: 1-D targets stay 1-D, m > n and NaN rows are refused (were repeated rows, a NaN row chosen first), n = 0
    is refused (gave a choice), Y_train without X_train is refused (the baselines were dropped silently)."""
    from jaxdistill import coresets
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    C, T = coresets.kmeans_centroids(X, y, 5, np.random.default_rng(1))
    assert C.shape == (5, 3) and T.shape == (5,)
    C2, T2 = coresets.kmeans_centroids(X, y[:, None], 5, np.random.default_rng(1))
    np.testing.assert_array_equal(T2[:, 0], T)
    with pytest.raises(ValueError, match="from 1 to 5"):
        coresets.kcenter_rows(X[:5], 8, rng)
    bad = X.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match=r"rows \[3\] hold NaN"):
        coresets.kcenter_rows(bad, 3, rng)
    with pytest.raises(ValueError, match="n >= 1"):
        jd.choose_ridge(np.eye(3), np.ones((3, 1)), 1.0, 0)
    out = jd.distill_moments(X, y, m=6)
    with pytest.raises(ValueError, match="Y_train was given without X_train"):
        jd.evaluate(out, X[:10], y[:10], Y_train=y)


def test_replace_keeps_a_result_savable_or_refuses(tmp_path):
    """#43: out.replace(lambda_inner=...) then save() wrote a file load() refused as 'edited by hand'."""
    X, Y = datasets.load("diabetes")
    out = jd.distill(X, Y, m=5, steps=50, progress=False)
    changed = out.replace(lambda_inner=0.5)
    changed.save(tmp_path / "a.npz")
    back = jd.load(tmp_path / "a.npz")
    assert back.lambda_inner == 0.5 and back.meta.lambda_choice == {"method": "given", "lambda": 0.5}
    np.testing.assert_array_equal(back.predict(X[:3]), changed.predict(X[:3]))
    with pytest.raises(ValueError, match="replace.*inconsistent"):
        out.replace(inner_lr=None)                       # a T-step procedure without η̃
    with pytest.raises(ValueError, match="stability bound"):
        out.replace(x=out.x * 10)                        # η̃ beyond Lemma 2.4's bound for the new set


def test_a_constant_column_carries_no_weight_and_a_near_constant_one_is_said(rng):
    """#43: with random initialisation (and a feature map mixing the columns) the distilled copy of a constant
    column moved, so for a linear model changing that column in new data moved the predictions; now the copy stays
    at its training value, and the linear model's coefficient of it is 0. A near-constant column (5 + 1e-9·N(0, 1))
    cannot be told from a real column with a large offset, so a prediction 10⁷ of its sd out is warned about."""
    import jax
    X, Y = datasets.load("diabetes")
    X = np.column_stack([X, np.full(len(X), 3.0)])
    for kw in (dict(init="random"),
               dict(init="random", model=jd.LinearModel(jd.RandomFourierFeatures(jax.random.PRNGKey(0), 11, 30)))):
        out = jd.distill(X, Y, m=8, key=0, steps=60, eval_every=30, progress=False, **kw)
        assert np.all(out.x[:, -1] == 0.0) and np.all(out.X[:, -1] == 3.0)
        if "model" not in kw:        # a feature map mixing the columns responds to them, as the full model does
            moved = X[:5].copy()
            moved[:, -1] *= 1.5
            np.testing.assert_array_equal(out.predict(moved), out.predict(X[:5]))
    near = np.column_stack([X[:, :10], 5.0 + 1e-9 * rng.normal(size=len(X))])
    out = jd.distill(near, Y, m=8, key=0, steps=60, eval_every=30, progress=False)
    probe = near[:3].copy()
    probe[:, -1] *= 1.01
    with pytest.warns(UserWarning, match=r"far outside the training rows in column\(s\) 'x10'"):
        out.predict(probe)


def test_gcv_extends_its_grid_past_an_edge_and_warns_if_still_there():
    """#43: λ at the bottom edge of the grid was reported only inside a description string."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    Xs = X - X.mean(0)
    y = Xs @ np.ones(5)                                     # noiseless: the best λ is far below the usual grid
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = jd.choose_ridge(Xs.T @ Xs / 200, (Xs.T @ y)[:, None] / 200, float(y @ y) / 200, 200)
    assert c.grid.size > 91 and c.lam < c.grid[60] and not c.at_edge
    noise = rng.normal(size=200)
    noise -= noise.mean()
    with pytest.warns(UserWarning, match="at the edge of its grid"):
        jd.choose_ridge(Xs.T @ Xs / 200, (Xs.T @ noise)[:, None] / 200, float(noise @ noise) / 200, 200)


def test_the_full_data_ridge_row_standardises_the_rows_it_is_given_not_the_runs():
    """#43: evaluate's 'full data, ridge' row standardised with the run's training rows (those the run did not hold
    out, which depend on its key), so on a 26-row set it moved by 0.035 R² between keys at one λ. It is now ridge
    with an intercept on the given rows in their own standard units: equal to scikit-learn's on StandardScaler-ed
    rows (α = nλ), and the same for every key."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = X[:26], Y[:26, 0], X[300:], Y[300:, 0]
    lam = 0.05
    r2 = []
    for key in (0, 1, 2):
        out = jd.distill(Xtr, Ytr, m=3, steps=30, key=key, lambda_inner=lam, progress=False)
        rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=2, coresets=())
        r2.append(rep.row("full")["r2"])
    sx, sy = StandardScaler().fit(Xtr), StandardScaler().fit(Ytr[:, None])
    oracle = Ridge(alpha=lam * len(Xtr)).fit(sx.transform(Xtr), sy.transform(Ytr[:, None]).ravel())
    pred = sy.inverse_transform(oracle.predict(sx.transform(Xte))[:, None]).ravel()
    want = 1 - np.sum((pred - Yte) ** 2) / np.sum((Yte - Yte.mean()) ** 2)
    np.testing.assert_allclose(r2, want, rtol=0, atol=1e-9)


def test_the_quality_check_does_not_cry_wolf_on_a_set_that_wins_on_the_test_rows():
    """#43: the check fired whenever the held-out loss was above the subsets' mean, however little; it fired falsely in
    8 of 177 winning runs (benchmarks/results/quality_check.md). This run's held-out loss is 0.2 % above the subsets'
    (well within what the draw of 35 held-out rows moves), while on the test rows the set is 23 % better: no warning
    now, and meta.bilevel.quality says how much the check could see."""
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.split("diabetes", X, Y, 0.2, key=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", jd.QualityWarning)
        out = jd.distill(Xtr, Ytr, m=3, key=1, steps=1, lr_x=1e-6, lr_y=1e-6, progress=False)
    q = out.meta.bilevel.quality
    assert q["distilled_loss"] > q["subset_mean_loss"]                       # 0.8's rule would have warned
    assert q["distilled_loss"] < q["subset_mean_loss"] + q["z"] * q["difference_se"] and "warning" not in q
    rep = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=10, coresets=(), key=1)
    assert rep.row("distilled")["loss"] < rep.row("subset_ridge")["loss"]    # the test rows: the set wins
