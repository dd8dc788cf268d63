"""jaxdistill: dataset distillation for regression, in JAX.

Public surface (everything else lives in the private ``_src`` package).
"""

from jaxdistill import closed_form as closed_form
from jaxdistill._src.analytic import AnalyticResult as AnalyticResult
from jaxdistill._src.analytic import distill_analytic as distill_analytic
from jaxdistill._src.api import distill as distill
from jaxdistill._src.config import DistillConfig as DistillConfig
from jaxdistill._src.config import QSchedule as QSchedule
from jaxdistill._src.config import TSchedule as TSchedule
from jaxdistill._src.config import paper_a7 as paper_a7
from jaxdistill._src.evaluate import EvalReport as EvalReport
from jaxdistill._src.evaluate import evaluate as evaluate
from jaxdistill._src.fast import ExactLinearGD as ExactLinearGD
from jaxdistill._src.features import FeatureMap as FeatureMap
from jaxdistill._src.features import FlaxFeatureMap as FlaxFeatureMap
from jaxdistill._src.features import Identity as Identity
from jaxdistill._src.features import Polynomial as Polynomial
from jaxdistill._src.features import RandomFourierFeatures as RandomFourierFeatures
from jaxdistill._src.features import RandomReLUNet as RandomReLUNet
from jaxdistill._src.inner import InnerSolver as InnerSolver
from jaxdistill._src.inner import UnrolledGD as UnrolledGD
from jaxdistill._src.io import load as load
from jaxdistill._src.io import save as save
from jaxdistill._src.kernels import RBF as RBF
from jaxdistill._src.kernels import FeatureKernel as FeatureKernel
from jaxdistill._src.kernels import Kernel as Kernel
from jaxdistill._src.kernels import ReLUNNGP as ReLUNNGP
from jaxdistill._src.kernels import ReLUNTK as ReLUNTK
from jaxdistill._src.krr import KernelRidge as KernelRidge
from jaxdistill._src.models import FlaxModel as FlaxModel
from jaxdistill._src.models import InnerModel as InnerModel
from jaxdistill._src.models import LinearModel as LinearModel
from jaxdistill._src.models import inner_loss as inner_loss
from jaxdistill._src.models import stability_bound as stability_bound
from jaxdistill._src.output import DistillOutput as DistillOutput
from jaxdistill._src.solver import BilevelSolver as BilevelSolver
from jaxdistill._src.solver import DistillParams as DistillParams
from jaxdistill._src.solver import DistillState as DistillState
from jaxdistill._src.solver import StepMetrics as StepMetrics
from jaxdistill._src.version import __version__ as __version__
