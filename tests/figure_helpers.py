"""The figure rules of tests/test_figures.py, shared with the examples' test (tests/test_docs.py)."""

from __future__ import annotations

MAX_LEGEND = 5


def figure_problems(fig) -> list[str]:
    """What is wrong with a figure (empty when nothing is). After a draw:

    - each visible axis of each axes carries at least two non-empty tick labels inside its limits (image axes
      excepted: their ticks are off on purpose; a colour bar only along its scale; the upper panel of a shared x
      axis may leave it to the panel below);
    - no legend has more than MAX_LEGEND entries, and no title runs off the figure;
    - a figure marked ``_jd_nonlinear`` does not cite Lemma 2.4.
    """
    fig.canvas.draw()
    problems = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or not ax.axison:
            continue
        name = f"axes {i} ({ax.get_title(loc='left') or ax.get_title() or ax.get_ylabel() or ax.get_label()!r})"
        legend = ax.get_legend()
        if legend is not None and len(legend.get_texts()) > MAX_LEGEND:
            problems.append(f"{name}: a legend of {len(legend.get_texts())} entries")
        if ax.images:                                # an image: ticks off on purpose
            continue
        colorbar = ax.get_label() == "<colorbar>"          # a colour scale: numbers along its long side only
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not axis.get_visible() or colorbar and not axis.get_ticklocs().size:
                continue
            shared = which == "x" and any(ax in g and other is not ax and other.get_position().y0 < ax.get_position().y0
                                          for g in [ax.get_shared_x_axes().get_siblings(ax)] for other in g)
            lo, hi = sorted(axis.get_view_interval())
            k, slack = (0 if which == "x" else 1), 1e-9 * abs(hi - lo)
            labels = [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_visible() and
                      t.get_text().strip() and lo - slack <= t.get_position()[k] <= hi + slack]
            if len(labels) < 2 and not shared:
                problems.append(f"{name}: the {which} axis has {len(labels)} tick labels")
        renderer = fig.canvas.get_renderer()
        for title in (ax.title, ax._left_title, ax._right_title):
            box = title.get_window_extent(renderer) if title.get_text() else None
            if box is not None and (box.x0 < fig.bbox.x0 - 1 or box.x1 > fig.bbox.x1 + 1):
                problems.append(f"{name}: its title runs off the figure ({title.get_text()[:40]!r}…)")
        for text in [ax.get_title(loc=k) for k in ("left", "center", "right")] + \
                [t.get_text() for t in (legend.get_texts() if legend else [])]:
            if "Lemma 2.4" in text and getattr(fig, "_jd_nonlinear", False):
                problems.append(f"{name}: cites Lemma 2.4 on a nonlinear model's panel")
    return problems
