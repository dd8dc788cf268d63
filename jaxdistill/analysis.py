"""Convergence analysis (public; see ``jaxdistill._src.analysis``)."""

from jaxdistill._src.report.analysis import LogLinearFit as LogLinearFit
from jaxdistill._src.report.analysis import fit_log_linear as fit_log_linear
from jaxdistill._src.report.analysis import inner_curve as inner_curve
