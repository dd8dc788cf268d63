"""Plots (public; needs matplotlib: ``pip install 'jaxdistill[plot]'``)."""

from jaxdistill._src.report.plots import plot_confusion as plot_confusion
from jaxdistill._src.report.plots import plot_history as plot_history
from jaxdistill._src.report.plots import plot_images as plot_images
from jaxdistill._src.report.plots import plot_inner_lr as plot_inner_lr
from jaxdistill._src.report.plots import plot_predictions as plot_predictions
from jaxdistill._src.report.plots import plot_projection as plot_projection
from jaxdistill._src.report.plots import save_all as save_all


def __getattr__(name: str):
    """Deprecated names: ``plot_digits`` (use ``plot_images``) and ``is_one_hot`` (an internal check)."""
    import warnings

    from jaxdistill._src.report import plots
    if name == "plot_digits":
        warnings.warn("jaxdistill.plots.plot_digits is deprecated: use plot_images (the same figure).",
                      DeprecationWarning, stacklevel=2)
    elif name == "is_one_hot":
        warnings.warn("jaxdistill.plots.is_one_hot is deprecated: plot_confusion and plot_images check one-hot "
                      "targets themselves.", DeprecationWarning, stacklevel=2)
    else:
        raise AttributeError(f"module 'jaxdistill.plots' has no attribute {name!r}")
    return getattr(plots, name)
