"""jaxdistill: dataset distillation for regression, in JAX.

Public surface (everything else lives in the private ``_src`` package; see docs/architecture.md).
"""

from jaxdistill import coresets as coresets
from jaxdistill import testing as testing
from jaxdistill._src.analytic.krr import distill_analytic as distill_analytic
from jaxdistill._src.analytic.moments import distill_moments as distill_moments
from jaxdistill._src.api import distill as distill
from jaxdistill._src.components.features import FeatureMap as FeatureMap
from jaxdistill._src.components.features import FlaxFeatureMap as FlaxFeatureMap
from jaxdistill._src.components.features import Identity as Identity
from jaxdistill._src.components.features import Polynomial as Polynomial
from jaxdistill._src.components.features import RandomFourierFeatures as RandomFourierFeatures
from jaxdistill._src.components.features import RandomReLUNet as RandomReLUNet
from jaxdistill._src.components.kernels import RBF as RBF
from jaxdistill._src.components.kernels import FeatureKernel as FeatureKernel
from jaxdistill._src.components.kernels import Kernel as Kernel
from jaxdistill._src.components.kernels import ReLUNNGP as ReLUNNGP
from jaxdistill._src.components.kernels import ReLUNTK as ReLUNTK
from jaxdistill._src.components.models import FlaxModel as FlaxModel
from jaxdistill._src.components.models import InnerModel as InnerModel
from jaxdistill._src.components.models import LinearModel as LinearModel
from jaxdistill._src.core.compile_cache import enable_compilation_cache as enable_compilation_cache
from jaxdistill._src.core.component import Component as Component
from jaxdistill._src.core.jit import set_cpu_compile_options as set_cpu_compile_options
from jaxdistill._src.core.linalg import stability_bound as stability_bound
from jaxdistill._src.data.sources import ArraySource as ArraySource
from jaxdistill._src.data.sources import BlockSource as BlockSource
from jaxdistill._src.data.sources import NpySource as NpySource
from jaxdistill._src.data.sources import RowSource as RowSource
from jaxdistill._src.data.sources import SufficientStats as SufficientStats
from jaxdistill._src.data.sources import sufficient_statistics as sufficient_statistics
from jaxdistill._src.defaults import default_inner_solver as default_inner_solver
from jaxdistill._src.defaults import default_objective as default_objective
from jaxdistill._src.distiller import Distiller as Distiller
from jaxdistill._src.inner.adjoints import Adjoint as Adjoint
from jaxdistill._src.inner.adjoints import Checkpointed as Checkpointed
from jaxdistill._src.inner.adjoints import Implicit as Implicit
from jaxdistill._src.inner.adjoints import RandomWindow as RandomWindow
from jaxdistill._src.inner.adjoints import Truncated as Truncated
from jaxdistill._src.inner.adjoints import Unrolled as Unrolled
from jaxdistill._src.inner.base import InnerSolver as InnerSolver
from jaxdistill._src.inner.base import Solution as Solution
from jaxdistill._src.inner.base import Support as Support
from jaxdistill._src.inner.exact_linear import ExactLinearGD as ExactLinearGD
from jaxdistill._src.inner.kernel_ridge import KernelRidge as KernelRidge
from jaxdistill._src.inner.unrolled import UnrolledGD as UnrolledGD
from jaxdistill._src.outer.callbacks import Callback as Callback
from jaxdistill._src.outer.callbacks import CheckpointCallback as CheckpointCallback
from jaxdistill._src.outer.callbacks import MetricsLogger as MetricsLogger
from jaxdistill._src.outer.callbacks import ProgressCallback as ProgressCallback
from jaxdistill._src.outer.callbacks import RunView as RunView
from jaxdistill._src.outer.callbacks import StoppingRule as StoppingRule
from jaxdistill._src.outer.callbacks import TensorBoardLogger as TensorBoardLogger
from jaxdistill._src.outer.records import History as History
from jaxdistill._src.outer.records import ProcedureBoundWarning as ProcedureBoundWarning
from jaxdistill._src.outer.records import QualityWarning as QualityWarning
from jaxdistill._src.outer.records import RunInfo as RunInfo
from jaxdistill._src.outer.records import Status as Status
from jaxdistill._src.outer.step import BilevelSolver as BilevelSolver
from jaxdistill._src.outer.step import DistillParams as DistillParams
from jaxdistill._src.outer.step import DistillState as DistillState
from jaxdistill._src.outer.step import StepMetrics as StepMetrics
from jaxdistill._src.outer.step import make_optimizer as make_optimizer
from jaxdistill._src.problem.config import DistillConfig as DistillConfig
from jaxdistill._src.problem.config import ModelPool as ModelPool
from jaxdistill._src.problem.config import QSchedule as QSchedule
from jaxdistill._src.problem.config import StepConfig as StepConfig
from jaxdistill._src.problem.config import TSchedule as TSchedule
from jaxdistill._src.problem.config import paper_a7 as paper_a7
from jaxdistill._src.problem.full_data import FullDataLoss as FullDataLoss
from jaxdistill._src.problem.objectives import BatchLoss as BatchLoss
from jaxdistill._src.problem.objectives import ExpectedBatchLoss as ExpectedBatchLoss
from jaxdistill._src.problem.objectives import Objective as Objective
from jaxdistill._src.problem.problem import Problem as Problem
from jaxdistill._src.problem.ridge_cv import RidgeChoice as RidgeChoice
from jaxdistill._src.problem.ridge_cv import choose_ridge as choose_ridge
from jaxdistill._src.report.evaluate import EvalReport as EvalReport
from jaxdistill._src.report.evaluate import evaluate as evaluate
from jaxdistill._src.result import DistillOutput as DistillOutput
from jaxdistill._src.result import load as load
from jaxdistill._src.result import save as save
from jaxdistill._src.sweep import SweepResult as SweepResult
from jaxdistill._src.sweep import error_vs_m as error_vs_m
from jaxdistill._src.version import __version__ as __version__


def __getattr__(name: str):
    """Deprecated names, each with a warning naming its replacement (see the CHANGELOG)."""
    if name == "closed_form":
        import importlib
        return importlib.import_module("jaxdistill.closed_form")       # warns: use jaxdistill.testing
    raise AttributeError(f"module 'jaxdistill' has no attribute {name!r}")
