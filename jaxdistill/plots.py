"""Plots (public; needs matplotlib: ``pip install 'jaxdistill[plot]'``)."""

from jaxdistill._src.report.plots import is_one_hot as is_one_hot
from jaxdistill._src.report.plots import plot_confusion as plot_confusion
from jaxdistill._src.report.plots import plot_digits as plot_digits
from jaxdistill._src.report.plots import plot_history as plot_history
from jaxdistill._src.report.plots import plot_images as plot_images
from jaxdistill._src.report.plots import plot_inner_lr as plot_inner_lr
from jaxdistill._src.report.plots import plot_predictions as plot_predictions
from jaxdistill._src.report.plots import plot_projection as plot_projection
from jaxdistill._src.report.plots import save_all as save_all
