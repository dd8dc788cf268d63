"""Figures that cannot mislead: every axis that shows data has labelled ticks, no legend has more than five entries,
validation curves and test-row baselines never share an axis unlabelled, and a panel about a nonlinear model does
not cite Lemma 2.4 (which is about linear models).

The check reads the figures matplotlib built (not the pixels): after a draw, each visible axis of each axes must
carry at least two non-empty tick labels — except image axes, whose ticks are off on purpose."""

from __future__ import annotations

import pytest

import jaxdistill as jd
from jaxdistill import datasets

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from figure_helpers import MAX_LEGEND, figure_problems  # noqa: E402

from jaxdistill import plots  # noqa: E402


@pytest.fixture(scope="module")
def run():
    X, Y = datasets.load("diabetes")
    Xtr, Ytr, Xte, Yte = datasets.train_test_split(X, Y, 0.2, key=0)
    out = jd.distill(Xtr, Ytr, m=10, steps=150, key=0, progress=False)
    report = jd.evaluate(out, Xte, Yte, Xtr, Ytr, n_subsets=3)
    return out, report, (Xtr, Ytr, Xte, Yte)


def test_the_checker_fails_on_what_it_is_meant_to_catch():
    fig, ax = plt.subplots()
    ax.semilogy([1, 2, 3], [0.31, 0.35, 0.42])        # a log axis inside one decade, minor ticks off (0.8's
    ax.minorticks_off()                               # sweep.png): no numbers on it
    for k in range(7):
        ax.plot([1, 2], [0.3, 0.4], label=f"line {k}")
    ax.legend()
    found = figure_problems(fig)
    assert any("legend of 7" in p for p in found) and any("y axis has" in p for p in found)
    plt.close(fig)


def test_the_loss_figure_keeps_validation_and_test_rows_apart_with_short_legends(run):
    out, report, _ = run
    refs = {r["method"]: r["loss"] for r in report.rows}
    assert len(refs) > MAX_LEGEND                      # more baselines than a legend may hold
    ax = plots.plot_history(out, references=refs)
    fig = ax.figure
    assert figure_problems(fig) == []
    test_panel = [a for a in fig.axes if "test rows" in a.get_title(loc="left")]
    assert len(test_panel) == 1 and test_panel[0] is not ax
    labels = [t.get_text() for t in test_panel[0].get_yticklabels()]
    assert set(refs) <= set(labels)                     # every baseline labelled by name, none dropped
    assert all("test" not in t.get_text() for t in ax.get_legend().get_texts())   # no test rows on the run's axes
    plt.close(fig)
    fig, one = plt.subplots()                           # into a given axes: dotted lines, labelled directly
    plots.plot_history(out, one, references=refs)
    assert figure_problems(fig) == []
    assert any("test rows" in t.get_text() for t in one.get_legend().get_texts())
    plt.close(fig)


def test_every_figure_of_a_result_passes_the_checks(run, tmp_path):
    out, report, (Xtr, Ytr, Xte, Yte) = run
    figs = [plots.plot_inner_lr(out).figure, plots.plot_projection(out, Xtr, Ytr).figure,
            plots.plot_predictions(out, Xte, Yte, report=report).figure,
            plots.plot_predictions(out, Xte, Yte, report=report, time_series=True).figure]
    for fig in figs:
        assert figure_problems(fig) == [], fig
        plt.close(fig)
    sweep = jd.error_vs_m(Xtr, Ytr, Xte, Yte, [2, 5], n_subsets=2, steps=60)
    fig = sweep.plot()
    assert figure_problems(fig) == []
    plt.close(fig)
    paths = plots.save_all(out, tmp_path, Xtr, Xte, Yte, report=report, Y_train=Ytr)
    assert {p.split("/")[-1] for p in paths} == {"loss.png", "projection.png", "predictions.png"}


def test_the_old_plot_projection_argument_order_still_works_and_says_so(run):
    out, _, (Xtr, Ytr, _, _) = run
    fig, ax = plt.subplots()
    with pytest.warns(DeprecationWarning, match="old argument order"):
        got = plots.plot_projection(out, Xtr, ax, Ytr)
    assert got is ax
    plt.close(fig)


def test_one_hot_targets_and_images_pass_the_checks():
    X, Y = datasets.load("digits")
    out = jd.distill_analytic(X[:1000], Y[:1000], m=10, lam=1.0)
    figs = [plots.plot_confusion(out, X[1000:], Y[1000:]).figure, plots.plot_images(out, X[:1000])]
    for fig in figs:
        assert figure_problems(fig) == []
        plt.close(fig)


def test_a_nonlinear_models_bound_is_not_called_lemma_2_4():
    flax = pytest.importorskip("flax.linen")

    class MLP(flax.Module):
        @flax.compact
        def __call__(self, x):
            return flax.Dense(1)(flax.tanh(flax.Dense(8)(x)))

    X, Y = datasets.load("diabetes")
    out = jd.distill(X, Y, m=8, steps=40, key=0, progress=False, eval_every=20,
                     model=jd.FlaxModel(MLP()))
    fig = plots.plot_history(out).figure
    fig._jd_nonlinear = True
    assert figure_problems(fig) == []
    texts = [t.get_text() for a in fig.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert any("inner Hessian" in t for t in texts)
    plt.close(fig)
