"""Behaviour of the outer loop: compilation count, schedules, stability, failures, nonlinear models."""

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

import jaxdistill as jd


def linear_data(rng, n=200, d=6, noise=0.1, d_out=1):
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, d_out))
    return X, X @ W + noise * rng.normal(size=(n, d_out))


def test_long_run_with_both_schedules_compiles_once(rng):
    X, Y = linear_data(rng)
    cfg = jd.DistillConfig(m=8, steps=230, T=10, Q=2, eval_every=50, q_schedule=jd.QSchedule(max_q=6, threshold=1.0),
                           t_schedule=jd.TSchedule(tau=30.0))
    lowered = []
    listener = lambda name, dur, **kw: lowered.append(kw.get("fun_name")) if name.endswith("to_mlir_module_duration") \
        else None  # noqa: E731
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        out = jd.distill(X, Y, config=cfg, progress=False)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    # 230 steps = 5 calls of the 50-step compiled chunk, the last one padded: it is lowered once (these
    # settings are this test's own, so no earlier test of the process compiled them)
    assert lowered.count("jit(_run_chunk)") == 1 and out.meta.bilevel.compilations["programs"] == len(lowered)
    assert out.history.loss.size == 230
    # T schedule: starts at T, approaches (never exceeds) T + int(T/2) = 15, follows the formula.
    T = out.history.T
    assert T[0] == cfg.T_at(1) == 10 and T.max() == cfg.T_at(230) == 14 and cfg.max_T == 15
    np.testing.assert_array_equal(T, [cfg.t_schedule.steps_at(10, s) for s in range(1, 231)])
    # q schedule (threshold 1.0 makes any loss increase count): q grows by one, capped at max_q.
    q = out.history.q
    assert q[0] == 2 and np.all(np.diff(q) >= 0) and np.all(np.diff(q) <= 1) and q.max() <= 6
    loss = out.history.loss
    rises = np.flatnonzero(loss[1:-1] >= loss[:-2])  # a rise at step s raises q at step s + 1
    assert q[-1] == min(6, 2 + rises.size)


def test_initial_inner_lr_above_stability_bound_is_an_error(rng):
    X, Y = linear_data(rng)
    with pytest.raises(ValueError, match=r"stability bound of Lemma 2.4.*Choose inner_lr <"):
        jd.distill(X, Y, m=10, inner_lr=50.0, progress=False)


def test_default_inner_lr_is_half_the_bound(rng):
    X, Y = linear_data(rng)
    out = jd.distill(X, Y, m=10, steps=5, eval_every=5, lr_eta=0.0, progress=False)
    assert out.history.stability_ratio[0] == pytest.approx(0.5, rel=1e-6)
    assert out.ok


def test_drift_above_bound_is_capped_by_default_and_reported_without_cap(rng):
    X, Y = linear_data(rng)
    # A huge α_η pushes η̃ towards and beyond the bound during the run (the meta-gradient's overshoot).
    capped = jd.distill(X, Y, m=10, steps=30, eval_every=10, lr_eta=5000.0, progress=False)
    assert capped.ok
    assert np.nanmax(capped.history.stability_ratio[1:]) == pytest.approx(0.9, rel=1e-4)
    free = jd.distill(X, Y, m=10, steps=30, eval_every=10, lr_eta=5000.0, eta_cap=None, progress=False)
    assert free.status in ("unstable", "nonfinite")
    assert free.max_stability_ratio >= 1.0 or free.status == "nonfinite"


def test_nonfinite_run_stops_keeps_last_finite_state_and_can_raise(rng):
    X, Y = linear_data(rng)
    # divergence_factor out of reach: the blow-up runs into inf/NaN before the stopping rule sees it
    kw = dict(m=10, steps=100, eval_every=10, lr_x=1e6, lr_y=1e6, divergence_factor=1e300, patience=None,
              outer_optimizer="sgd", progress=False)
    out = jd.distill(X, Y, **kw)
    assert out.status == "nonfinite" and not out.ok
    assert out.history.loss.size < 100
    assert np.all(np.isfinite(out.x)) and np.all(np.isfinite(out.y))
    with pytest.raises(FloatingPointError, match="lower lr_x"):
        jd.distill(X, Y, raise_on_failure=True, **kw)


def test_eta_stays_positive(rng):
    X, Y = linear_data(rng)
    out = jd.distill(X, Y, m=10, steps=60, eval_every=20, lr_eta=-0.0 + 5.0, inner_lr=1e-4, progress=False,
                     optimizer_eta=optax.sgd(-1e3))  # gradient *ascent* drives η̃ down hard
    assert out.inner_lr > 0
    assert np.all(out.history.eta > 0)


def test_multi_output_targets_and_distillation_improves_loss(rng):
    X, Y = linear_data(rng, n=300, d=5, d_out=3)
    out = jd.distill(X, Y, m=6, steps=300, T=20, eval_every=50, progress=False)
    assert out.y.shape == (6, 3) and out.Y.shape == (6, 3)
    assert out.history.val_loss[-1] < 0.5 * out.history.val_loss[0]


def test_same_key_same_result_and_any_optax_optimizer(rng):
    X, Y = linear_data(rng)
    kw = dict(m=6, steps=40, T=8, eval_every=20, progress=False, optimizer_x=optax.adam(1e-2),
              optimizer_y=optax.adam(1e-2))
    a, b = jd.distill(X, Y, key=3, **kw), jd.distill(X, Y, key=3, **kw)
    np.testing.assert_array_equal(a.x, b.x)
    c = jd.distill(X, Y, key=4, **kw)
    assert not np.array_equal(a.x, c.x)


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.tanh(nn.Dense(8)(x)))


def test_flax_mlp_inner_model(rng):
    X = rng.normal(size=(240, 2))
    Y = np.sin(2 * X[:, :1]) + 0.5 * X[:, 1:] ** 2
    model = jd.FlaxModel(MLP())
    out = jd.distill(X, Y, m=12, steps=150, T=20, Q=4, inner_lr=0.2, eval_every=50, model=model,
                     optimizer_x=optax.adam(0.02), optimizer_y=optax.adam(0.02), progress=False)
    # the bound of plain GD on the MLP (2/λ_max of the inner Hessian at θ₀) is tracked and respected
    ratio = out.history.stability_ratio
    assert out.ok and np.isfinite(ratio).all() and ratio.max() <= 0.9 + 1e-6
    assert out.history.val_loss[-1] < 0.8 * out.history.val_loss[0]
    # evaluation: the baselines get the same T-step GD with their own tuned step size, and the full data
    rep = jd.evaluate(out, X[:50], Y[:50], X[50:], Y[50:], n_inits=4, n_subsets=1)
    assert [r["method"] for r in rep.rows] == ["distilled, T-step GD", "random subset, T-step GD",
                                               "full data, T-step GD", "full data, 10·T-step GD",
                                               "mean of training targets"]
    full, longer = rep.row("full"), rep.row("full_long")
    assert "20 GD steps" in full["procedure"] and "200 GD steps" in longer["procedure"]
    assert longer["r2"] > full["r2"] > rep.row("mean")["r2"]
