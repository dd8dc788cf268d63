"""Inner solvers and their solutions.

An [`InnerSolver`][jaxdistill.InnerSolver] maps (distilled data, η̃, a batch of θ₀) to a
[`Solution`][jaxdistill.Solution]: what the inner procedure trained, as an object that predicts on new (featurized)
inputs. Solvers know nothing
of the outer batch or the outer loss: objectives (``jaxdistill._src.problem.objectives``) turn a
solution into a loss. Solutions live only inside traced code, so they are plain Python objects.
"""

from __future__ import annotations

import abc
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxdistill._src.components.models import InnerModel
from jaxdistill._src.core.component import Component
from jaxdistill._src.core.jit import jit

PyTree = Any


class Support(NamedTuple):
    """What an inner solver trains on: the distilled support and its training hyper-parameters.

    Attributes:
      F: featurized distilled inputs Φ(X̃), shape (m, p).
      Y: distilled targets Ỹ, shape (m, d_out).
      eta: the inner learning rate η̃ (scalar; ignored by exact solves such as [`KernelRidge`][jaxdistill.KernelRidge]).
      lambda_inner: λ_I of the inner loss (Def. 2.1): a float leaf when > 0; an exact 0 is a static Python
        float (it selects the solve's path: λ_I = 0 takes the pseudo-inverse).
    """

    F: jax.Array
    Y: jax.Array
    eta: Any
    lambda_inner: float

    @property
    def m(self) -> int:
        return self.F.shape[0]


class Solution(abc.ABC):
    """The result of the inner procedure for Q initialisations."""

    @abc.abstractmethod
    def predict(self, FB: jax.Array) -> jax.Array:
        """Predictions (Q, b, d_out) on featurized inputs FB (b, p), one row of Q per θ₀."""


class ThetaSolution(Solution):
    """Trained parameters θ_T, stacked on axis 0 (Q of them)."""

    def __init__(self, model: InnerModel, thetas: PyTree):
        self.model, self.thetas = model, thetas

    def predict(self, FB):
        return jax.vmap(lambda th: self.model.apply(th, FB))(self.thetas)


class AffineSolution(Solution):
    """θ_T = M^T θ₀ + D_T, affine in θ₀ (models linear in θ trained by gradient descent).

    ``apply_MT(A)`` applies the symmetric p×p operator M^T to a (p, ·) array; ``D`` is D_T (p, d_out);
    ``theta0s`` (Q, p, d_out). Objectives that integrate over θ₀ analytically use these parts.
    """

    def __init__(self, apply_MT, D: jax.Array, theta0s: jax.Array):
        self.apply_MT, self.D, self.theta0s = apply_MT, D, theta0s

    @property
    def thetas(self):
        Q, p, k = self.theta0s.shape
        th = jnp.moveaxis(self.theta0s, 0, 1).reshape(p, Q * k)
        return jnp.moveaxis(self.apply_MT(th).reshape(p, Q, k), 1, 0) + self.D[None]

    def predict(self, FB):
        Q, p, k = self.theta0s.shape
        th = jnp.moveaxis(self.theta0s, 0, 1).reshape(p, Q * k)            # (p, Q·d_out)
        pred = (FB @ self.apply_MT(th)).reshape(FB.shape[0], Q, k) + (FB @ self.D)[:, None, :]
        return jnp.moveaxis(pred, 1, 0)


class KernelSolution(Solution):
    """Kernel ridge predictor K(·, X̃) α with α = (K_SS + reg I)⁻¹Ỹ; the same for every θ₀."""

    def __init__(self, kernel_fn, F: jax.Array, alpha: jax.Array, num: int):
        self.kernel_fn, self.F, self.alpha, self.num = kernel_fn, F, alpha, num

    def predict(self, FB):
        pred = self.kernel_fn(FB, self.F) @ self.alpha
        return jnp.broadcast_to(pred, (self.num, *pred.shape))


class InnerSolver(Component):
    """How θ_T (or a predictor) is obtained from the distilled data for each θ₀."""

    #: whether the procedure depends on the inner learning rate η̃ and on θ₀
    uses_eta: bool = True
    uses_theta0: bool = True

    @abc.abstractmethod
    def solve(self, model: InnerModel, support: Support, theta0s: PyTree, num_steps, max_steps: int) -> Solution:
        """Train on ``support`` from each of the Q stacked ``theta0s`` for ``num_steps`` (≤ ``max_steps``, may be
        traced). Procedures without θ₀ or steps (exact solves) read only what they need."""

    #: whether the inner procedure is plain gradient descent (Lemma 2.4's stability bound applies)
    plain_gd: bool = True
    #: whether the outer objective takes the exact expectation over θ₀ (``ExactLinearGD(expectation=True)``)
    expectation: bool = False
    #: the kernel of a kernel solve (``KernelRidge``), None for procedures that train parameters θ
    kernel = None

    def training_steps(self, model: InnerModel, key: jax.Array, num_steps):
        """Inner steps to run in one outer step's training (T; randomised by ``RandomWindow``)."""
        return num_steps

    def check(self, model: InnerModel) -> None:
        """Raise ``ValueError`` if this solver cannot handle ``model`` (trace-time check)."""
        return None

    def train(self, model: InnerModel, support: Support, theta0: PyTree, num_steps, max_steps=None) -> PyTree:
        """θ_T for a single θ₀ (a convenience over `solve`)."""
        max_steps = int(num_steps) if max_steps is None else max_steps
        th0s = jax.tree_util.tree_map(lambda a: a[None], theta0)
        sol = self.solve(model, support, th0s, num_steps, max_steps)
        if not hasattr(sol, "thetas"):
            raise NotImplementedError(f"{type(self).__name__} with this model has no parameter vector θ; "
                                      "use solve(...).predict(...).")
        return jax.tree_util.tree_map(lambda a: a[0], sol.thetas)

    def describe(self, T, eta) -> str:
        """A short label of the inner training procedure (for evaluation tables)."""
        return f"{T} GD steps, η̃ = {eta:.3g}"


def _predict_after_training(model, solver, F, Y, eta, lambda_inner, theta0s, num_steps, Ftest, max_steps):
    sol = solver.solve(model, Support(F, Y, eta, lambda_inner), theta0s, num_steps, max_steps)
    return sol.predict(Ftest)


def _static_lambda(f):
    """λ_I as a Python float: solvers then see a concrete number, and λ = 0 takes the pseudo-inverse
    path of ``psd_solve`` (a traced 0 went through a Cholesky factorisation of a singular Gram matrix
    and returned NaN for a rank-deficient distilled set)."""
    jitted = jit(f, static_argnames=("max_steps", "lambda_inner"))

    def call(model, solver, F, Y, eta, lambda_inner, theta0s, num_steps, Ftest, max_steps):
        return jitted(model, solver, F, Y, eta, float(lambda_inner), theta0s, num_steps, Ftest, max_steps)
    return call


#: Predictions (Q, n_test, d_out) after training from each of the Q ``theta0s`` (compiled once per shapes and λ_I).
predict_after_training = _static_lambda(_predict_after_training)
