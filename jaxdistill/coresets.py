"""Coreset baselines (public; see ``jaxdistill._src.report.coresets``): m rows or centroids chosen without
distillation, as ``evaluate`` compares them."""

from jaxdistill._src.report.coresets import CORESETS as CORESETS
from jaxdistill._src.report.coresets import KINDS as KINDS
from jaxdistill._src.report.coresets import coreset as coreset
from jaxdistill._src.report.coresets import herding_rows as herding_rows
from jaxdistill._src.report.coresets import kcenter_rows as kcenter_rows
from jaxdistill._src.report.coresets import kmeans_centroids as kmeans_centroids
from jaxdistill._src.report.coresets import leverage_rows as leverage_rows
from jaxdistill._src.report.coresets import leverage_scores as leverage_scores
