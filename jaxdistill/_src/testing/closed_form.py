"""Exact closed forms for the linear inner model (Φ = identity), used as independent checks.

Notation (as in the regression paper's errata, listed on the docs' papers page): A = X̃ᵀX̃, B = X̃ᵀỸ,
β = 1 − η̃λ_I, γ = η̃/m, M = βI − γA. These functions use explicit matrix powers and sums — deliberately *not* the scan
or autodiff — so that tests comparing them with [`UnrolledGD`][jaxdistill.UnrolledGD] and ``jax.grad``
compare two independent computations.

Errata: eq. (4) of the regression paper (and the last line of A.4) is wrong; it is kept here as
[`theta_T_eq4_as_printed`][jaxdistill.testing.theta_T_eq4_as_printed] only so a test can record that it disagrees
with the scan.
"""

from __future__ import annotations

from math import comb

import jax.numpy as jnp


def _pieces(Xt, Yt, eta, lambda_inner):
    m, d = Xt.shape
    A = Xt.T @ Xt
    B = Xt.T @ Yt
    beta = 1.0 - eta * lambda_inner
    gamma = eta / m
    M = beta * jnp.eye(d, dtype=Xt.dtype) - gamma * A
    return A, B, beta, gamma, M


def theta_T(Xt, Yt, eta, lambda_inner, T, theta0):
    """Corrected eq. (4): θ_T = M^T θ₀ + γ Σ_{k<T} M^k B (explicit powers and sum)."""
    _, B, _, gamma, M = _pieces(Xt, Yt, eta, lambda_inner)
    Mk = jnp.eye(M.shape[0], dtype=M.dtype)
    acc = jnp.zeros_like(B)
    for _ in range(T):
        acc = acc + Mk @ B
        Mk = Mk @ M
    return Mk @ theta0 + gamma * acc


def theta_T_ridge_form(Xt, Yt, eta, lambda_inner, T, theta0):
    """θ_T = M^T θ₀ + (A + mλ_I I)⁻¹(I − M^T) B (λ_I > 0 or A invertible); T → ∞ gives ridge."""
    A, B, _, _, M = _pieces(Xt, Yt, eta, lambda_inner)
    m, d = Xt.shape
    MT = jnp.linalg.matrix_power(M, T)
    eye = jnp.eye(d, dtype=Xt.dtype)
    return MT @ theta0 + jnp.linalg.solve(A + m * lambda_inner * eye, (eye - MT) @ B)


def theta_T_eq4_as_printed(Xt, Yt, eta, lambda_inner, T, theta0):
    """Eq. (4) exactly as printed: M^T θ₀ + Σ_{j<T} (−1)^j C(T,j) β^{T−j} (γA)^j B. WRONG (erratum 1)."""
    A, B, beta, gamma, M = _pieces(Xt, Yt, eta, lambda_inner)
    D = jnp.zeros_like(B)
    P = jnp.eye(A.shape[0], dtype=A.dtype)
    for j in range(T):
        D = D + (-1) ** j * comb(T, j) * beta ** (T - j) * (P @ B)
        P = P @ (gamma * A)
    return jnp.linalg.matrix_power(M, T) @ theta0 + D


def ridge(X, Y, lam):
    """Minimiser of 1/(2n)‖Xθ − Y‖² + λ/2‖θ‖²: θ = (XᵀX + nλI)⁻¹XᵀY (the T → ∞ limit)."""
    n, d = X.shape
    return jnp.linalg.solve(X.T @ X + n * lam * jnp.eye(d, dtype=X.dtype), X.T @ Y)


def meta_grad_T1(Xt, Yt, eta, lambda_inner, theta0, XB, YB):
    """Meta-gradient for T = 1, eqs. (10) and corrected (11) of the regression paper, plus ∂/∂η̃.

    For one θ₀ and the data term L = 1/(2n)‖X_B θ₁ − Y_B‖² (no λ_O term), with r = X_Bθ₁ − Y_B:

      ∇_X̃ L = −η̃/(mn) [ (X̃θ₀ − Ỹ) rᵀX_B + X̃ X_Bᵀ r θ₀ᵀ ]       (eq. 10)
      ∇_Ỹ L =  η̃/(mn) X̃ X_Bᵀ r                                   (eq. 11, corrected)
      ∂L/∂η̃ = gᵀ(−λ_I θ₀ − X̃ᵀ(X̃θ₀ − Ỹ)/m),  g = X_Bᵀ r / n.

    Returns (grad_X, grad_Y, grad_eta).
    """
    m = Xt.shape[0]
    n = XB.shape[0]
    e = Xt @ theta0 - Yt
    theta1 = (1.0 - eta * lambda_inner) * theta0 - eta / m * Xt.T @ e
    r = XB @ theta1 - YB
    gX = -eta / (m * n) * (e @ r.T @ XB + Xt @ XB.T @ r @ theta0.T)
    gY = eta / (m * n) * Xt @ XB.T @ r
    g = XB.T @ r / n
    geta = jnp.sum(g * (-lambda_inner * theta0 - Xt.T @ e / m))
    return gX, gY, geta


def meta_grad(Xt, Yt, eta, lambda_inner, T, theta0, XB, YB):
    """Meta-gradient for general T by the adjoint recursion, written out as explicit sums.

    With θ_t from the closed form, g = X_Bᵀ(X_Bθ_T − Y_B)/n and a_{t+1} = M^{T−1−t} g:

      ∇_X̃ L = γ Σ_{t<T} [ (Ỹ − X̃θ_t) a_{t+1}ᵀ − X̃ a_{t+1} θ_tᵀ ]
      ∇_Ỹ L = γ X̃ Σ_{k<T} M^k g                     (erratum 4: ∂θ_T/∂Ỹ = γ Σ M^k X̃ᵀ)
      ∂L/∂η̃ = Σ_{t<T} ⟨a_{t+1}, −(λ_I I + A/m) θ_t + B/m⟩

    Returns (grad_X, grad_Y, grad_eta) of the data term L = 1/(2n)‖X_Bθ_T − Y_B‖².
    """
    A, B, _, gamma, M = _pieces(Xt, Yt, eta, lambda_inner)
    m, d = Xt.shape
    n = XB.shape[0]
    thetas = [theta0]
    for _ in range(T):
        thetas.append(M @ thetas[-1] + gamma * B)
    g = XB.T @ (XB @ thetas[T] - YB) / n
    adj = [None] * (T + 1)
    adj[T] = g
    for t in range(T - 1, 0, -1):
        adj[t] = M @ adj[t + 1]
    gX = jnp.zeros_like(Xt)
    gY = jnp.zeros_like(Yt)
    geta = 0.0
    dM = -(lambda_inner * jnp.eye(d, dtype=Xt.dtype) + A / m)
    for t in range(T):
        a, th = adj[t + 1], thetas[t]
        gX = gX + gamma * ((Yt - Xt @ th) @ a.T - Xt @ a @ th.T)
        gY = gY + gamma * Xt @ a
        geta = geta + jnp.sum(a * (dM @ th + B / m))
    return gX, gY, geta
