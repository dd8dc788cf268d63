"""jaxdistill: dataset distillation for regression, in JAX.

Public surface (everything else lives in the private ``_src`` package; see docs/architecture.md). The names are
loaded on first use (PEP 562), so ``import jaxdistill`` and ``jaxdistill --help`` do not wait for JAX: ``jd.distill``
imports what it needs the first time it is looked up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from jaxdistill._src.version import __version__ as __version__

if TYPE_CHECKING:                      # for type checkers, IDEs and the API reference: the names, eagerly
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
    from jaxdistill._src.data.cluster import DaskSource as DaskSource
    from jaxdistill._src.data.parquet import ParquetSource as ParquetSource
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
    from jaxdistill._src.outer.records import BilevelInfo as BilevelInfo
    from jaxdistill._src.outer.records import CommandInfo as CommandInfo
    from jaxdistill._src.outer.records import History as History
    from jaxdistill._src.outer.records import KRRPaperInfo as KRRPaperInfo
    from jaxdistill._src.outer.records import ProcedureBoundWarning as ProcedureBoundWarning
    from jaxdistill._src.outer.records import QualityWarning as QualityWarning
    from jaxdistill._src.outer.records import RunInfo as RunInfo
    from jaxdistill._src.outer.records import Status as Status
    from jaxdistill._src.outer.step import BilevelSolver as BilevelSolver
    from jaxdistill._src.outer.step import DistillParams as DistillParams
    from jaxdistill._src.outer.step import DistillState as DistillState
    from jaxdistill._src.outer.step import StepMetrics as StepMetrics
    from jaxdistill._src.outer.step import make_optimizer as make_optimizer
    from jaxdistill._src.privacy.release import PrivateStatistics as PrivateStatistics
    from jaxdistill._src.privacy.release import private_statistics as private_statistics
    from jaxdistill._src.privacy.sets import distill_private as distill_private
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

#: public name → the private module that defines it
_NAMES = {
    "distill_analytic": "jaxdistill._src.analytic.krr",
    "distill_moments": "jaxdistill._src.analytic.moments",
    "distill": "jaxdistill._src.api",
    "FeatureMap": "jaxdistill._src.components.features",
    "FlaxFeatureMap": "jaxdistill._src.components.features",
    "Identity": "jaxdistill._src.components.features",
    "Polynomial": "jaxdistill._src.components.features",
    "RandomFourierFeatures": "jaxdistill._src.components.features",
    "RandomReLUNet": "jaxdistill._src.components.features",
    "RBF": "jaxdistill._src.components.kernels",
    "FeatureKernel": "jaxdistill._src.components.kernels",
    "Kernel": "jaxdistill._src.components.kernels",
    "ReLUNNGP": "jaxdistill._src.components.kernels",
    "ReLUNTK": "jaxdistill._src.components.kernels",
    "FlaxModel": "jaxdistill._src.components.models",
    "InnerModel": "jaxdistill._src.components.models",
    "LinearModel": "jaxdistill._src.components.models",
    "enable_compilation_cache": "jaxdistill._src.core.compile_cache",
    "Component": "jaxdistill._src.core.component",
    "set_cpu_compile_options": "jaxdistill._src.core.jit",
    "stability_bound": "jaxdistill._src.core.linalg",
    "DaskSource": "jaxdistill._src.data.cluster",
    "ParquetSource": "jaxdistill._src.data.parquet",
    "ArraySource": "jaxdistill._src.data.sources",
    "BlockSource": "jaxdistill._src.data.sources",
    "NpySource": "jaxdistill._src.data.sources",
    "RowSource": "jaxdistill._src.data.sources",
    "SufficientStats": "jaxdistill._src.data.sources",
    "sufficient_statistics": "jaxdistill._src.data.sources",
    "default_inner_solver": "jaxdistill._src.defaults",
    "default_objective": "jaxdistill._src.defaults",
    "Distiller": "jaxdistill._src.distiller",
    "Adjoint": "jaxdistill._src.inner.adjoints",
    "Checkpointed": "jaxdistill._src.inner.adjoints",
    "Implicit": "jaxdistill._src.inner.adjoints",
    "RandomWindow": "jaxdistill._src.inner.adjoints",
    "Truncated": "jaxdistill._src.inner.adjoints",
    "Unrolled": "jaxdistill._src.inner.adjoints",
    "InnerSolver": "jaxdistill._src.inner.base",
    "Solution": "jaxdistill._src.inner.base",
    "Support": "jaxdistill._src.inner.base",
    "ExactLinearGD": "jaxdistill._src.inner.exact_linear",
    "KernelRidge": "jaxdistill._src.inner.kernel_ridge",
    "UnrolledGD": "jaxdistill._src.inner.unrolled",
    "Callback": "jaxdistill._src.outer.callbacks",
    "CheckpointCallback": "jaxdistill._src.outer.callbacks",
    "MetricsLogger": "jaxdistill._src.outer.callbacks",
    "ProgressCallback": "jaxdistill._src.outer.callbacks",
    "RunView": "jaxdistill._src.outer.callbacks",
    "StoppingRule": "jaxdistill._src.outer.callbacks",
    "TensorBoardLogger": "jaxdistill._src.outer.callbacks",
    "BilevelInfo": "jaxdistill._src.outer.records",
    "CommandInfo": "jaxdistill._src.outer.records",
    "History": "jaxdistill._src.outer.records",
    "KRRPaperInfo": "jaxdistill._src.outer.records",
    "ProcedureBoundWarning": "jaxdistill._src.outer.records",
    "QualityWarning": "jaxdistill._src.outer.records",
    "RunInfo": "jaxdistill._src.outer.records",
    "Status": "jaxdistill._src.outer.records",
    "BilevelSolver": "jaxdistill._src.outer.step",
    "DistillParams": "jaxdistill._src.outer.step",
    "DistillState": "jaxdistill._src.outer.step",
    "StepMetrics": "jaxdistill._src.outer.step",
    "make_optimizer": "jaxdistill._src.outer.step",
    "PrivateStatistics": "jaxdistill._src.privacy.release",
    "private_statistics": "jaxdistill._src.privacy.release",
    "distill_private": "jaxdistill._src.privacy.sets",
    "DistillConfig": "jaxdistill._src.problem.config",
    "ModelPool": "jaxdistill._src.problem.config",
    "QSchedule": "jaxdistill._src.problem.config",
    "StepConfig": "jaxdistill._src.problem.config",
    "TSchedule": "jaxdistill._src.problem.config",
    "paper_a7": "jaxdistill._src.problem.config",
    "FullDataLoss": "jaxdistill._src.problem.full_data",
    "BatchLoss": "jaxdistill._src.problem.objectives",
    "ExpectedBatchLoss": "jaxdistill._src.problem.objectives",
    "Objective": "jaxdistill._src.problem.objectives",
    "Problem": "jaxdistill._src.problem.problem",
    "RidgeChoice": "jaxdistill._src.problem.ridge_cv",
    "choose_ridge": "jaxdistill._src.problem.ridge_cv",
    "EvalReport": "jaxdistill._src.report.evaluate",
    "evaluate": "jaxdistill._src.report.evaluate",
    "DistillOutput": "jaxdistill._src.result",
    "load": "jaxdistill._src.result",
    "SweepResult": "jaxdistill._src.sweep",
    "error_vs_m": "jaxdistill._src.sweep",
}
#: public submodules
_MODULES = ('coresets', 'testing')
#: deprecated names (not in __all__): still importable, each warns and names its replacement (see the CHANGELOG)
_DEPRECATED = {"save": "jaxdistill._src.result"}

__all__ = sorted([*_NAMES, *_MODULES, "__version__"])


def __getattr__(name: str):
    """A public name, imported on first use; deprecated names warn and name their replacement (see the CHANGELOG)."""
    if name in _NAMES or name in _DEPRECATED:
        value = getattr(importlib.import_module(_NAMES.get(name) or _DEPRECATED[name]), name)
    elif name in _MODULES or name == "closed_form":        # closed_form warns: use jaxdistill.testing
        value = importlib.import_module(f"jaxdistill.{name}")
    else:
        raise AttributeError(f"module 'jaxdistill' has no attribute {name!r}")
    if name != "closed_form":
        globals()[name] = value                             # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
