"""Matrix series of T gradient steps through one eigendecomposition, with a derivative that holds at repeated
eigenvalues.

The exact fast path needs, for a symmetric positive semi-definite Gram matrix G = U diag(κ) Uᵀ (r × r) and the
step's scalars β = 1 − η̃λ_I, γ = η̃/m, ν(κ) = β − γκ, the matrix functions (corrected eq. 4)

    N^T = U diag(ν^T) Uᵀ,   S_T = Σ_{k<T} N^k = U diag(s(ν)) Uᵀ,   F_T = Σ_{k<T} β^{T−1−k} N^k = U diag(f(ν)) Uᵀ.

The scalar series ν^T, s and f are evaluated elementwise by the same binary doubling the matrix path uses
(`doubling`), so they are polynomials in ν with no division: nothing cancels at ν = 1 or ν = β, and T may be
traced.

Their derivative in G is the Daleckii–Krein formula (Higham, *Functions of Matrices*, Thm. 3.11):

    d φ(G)[E] = U (D ∘ (Uᵀ E U)) Uᵀ,   D_ij = (φ(κ_i) − φ(κ_j)) / (κ_i − κ_j),   D_ii = φ′(κ_i),

which, unlike autodiff through ``eigh`` (whose rule divides by κ_i − κ_j), is finite and exact at repeated
eigenvalues. Where a pair is so close that the divided difference would cancel (scaled gap h = γ·T·|κ_i − κ_j|
below ``_CLOSE``), D_ij = (φ′_i + φ′_j)/2 − (φ‴_i + φ‴_j)/2 · (κ_i − κ_j)²/12, which is the divided difference to
O(h⁴) (the trapezoid rule's error, corrected by its leading term).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

#: scaled gap below which a divided difference is replaced by its Taylor form: the cancellation error ε/h and the
#: truncation error ~h⁴ balance near h = ε^(1/5)
_CLOSE = {jnp.dtype("float64"): 1e-3, jnp.dtype("float32"): 5e-2}


def doubling(N, beta, T, num_bits: int, weighted: bool = True, elementwise: bool = False):
    """Return (N^T, Σ_{k<T} N^k, Σ_{k<T} β^{T−1−k} N^k, β^T) for integer 0 ≤ T < 2**num_bits, by binary doubling:
    S_{a+b} = S_a + N^a S_b, F_{a+b} = β^b F_a + N^a F_b.

    ``N`` is a square matrix (products are matmuls), or with ``elementwise`` an array of scalars (the series of
    each entry). ``T`` may be traced; every bit is processed and selected with ``where`` so shapes are static. With
    ``weighted=False`` the third output is not computed (returned as ``None``).
    """
    mul = jnp.multiply if elementwise else jnp.matmul
    one = jnp.ones_like(N) if elementwise else jnp.eye(N.shape[0], dtype=N.dtype)
    T = jnp.asarray(T, jnp.int32)
    beta = jnp.asarray(beta, N.dtype)
    # Accumulated block of length a (initially 0) and the current power-of-two block of length 2^j.
    P, S, F, bp = one, jnp.zeros_like(N), jnp.zeros_like(N), jnp.ones((), N.dtype)
    Pb, Sb, Fb, bb = N, one, one, beta
    for j in range(num_bits):
        take = ((T >> j) & 1) == 1
        S = jnp.where(take, S + mul(P, Sb), S)
        if weighted:
            F = jnp.where(take, bb * F + mul(P, Fb), F)
        P, bp = jnp.where(take, mul(P, Pb), P), jnp.where(take, bp * bb, bp)
        if j + 1 < num_bits:
            Sb = Sb + mul(Pb, Sb)
            if weighted:
                Fb = bb * Fb + mul(Pb, Fb)
            Pb, bb = mul(Pb, Pb), bb * bb
    return P, S, (F if weighted else None), bp


def _phi(kappa, a, g, T, num_bits: int, which: str):
    """The scalar function named by ``which`` ("power": ν^T, "sum": s, "weighted": f) at the eigenvalues κ, with
    a = η̃λ_I (β = 1 − a) and g = γ = η̃/m."""
    beta = 1.0 - a
    nu = beta - g * kappa
    P, S, F, _ = doubling(nu, beta, T, num_bits, which == "weighted", elementwise=True)
    return {"power": P, "sum": S, "weighted": F}[which]


def _outer_sum(u, v):
    """u_i + v_j as an r × r matrix, through a rank-2 product: the product's inputs are materialised once, where a
    broadcast lets XLA fuse the elementwise series that made u and v into every one of the r² entries (measured
    5 ms of 12 at r = 400; XLA:CPU drops ``optimization_barrier``). Exact: each entry is one rounded sum."""
    one = jnp.ones_like(u)
    return jnp.dot(jnp.stack([u, one], 1), jnp.stack([one, v], 0), precision=jax.lax.Precision.HIGHEST)


def _divided_differences(phi, d1, d3, gap, scale, close):
    """D_ij of the Daleckii–Krein formula for one scalar function (values, first and third derivatives at κ;
    ``gap`` κ_i − κ_j)."""
    near = jnp.abs(gap) * scale < close
    safe = jnp.where(near, 1.0, gap)
    taylor = 0.5 * _outer_sum(d1, d1) - 0.5 * _outer_sum(d3, d3) * gap ** 2 / 12.0
    return jnp.where(near, taylor, _outer_sum(phi, -phi) / safe)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5, 6))
def spectral_apply(G, a, g, T, V, num_bits: int, which: str):
    """φ(G) V for the matrix function named by ``which`` ("power", "sum" or "weighted"; see the module docs) of the
    symmetric PSD ``G`` (r × r), applied to ``V`` (r × k), for a = η̃λ_I and g = γ = η̃/m (arrays of G's dtype) and
    T < 2**num_bits steps (may be traced). Calls on one G share its eigendecomposition (XLA merges them)."""
    kappa, U = jnp.linalg.eigh(G)
    return U @ (_phi(kappa, a, g, T, num_bits, which)[:, None] * (U.T @ V))


@spectral_apply.defjvp
def _spectral_apply_jvp(num_bits, which, primals, tangents):
    G, a, g, T, V = primals
    dG, da, dg, _, dV = tangents
    kappa, U = jnp.linalg.eigh(G)
    f = lambda k: _phi(k, a, g, T, num_bits, which)  # noqa: E731
    ones = jnp.ones_like(kappa)
    d1_of = lambda k: jax.jvp(f, (k,), (ones,))[1]  # noqa: E731
    phi, d1 = jax.jvp(f, (kappa,), (ones,))
    d3 = jax.jvp(lambda k: jax.jvp(d1_of, (k,), (ones,))[1], (kappa,), (ones,))[1]
    dphi = jax.jvp(lambda a_, g_: _phi(kappa, a_, g_, T, num_bits, which), (a, g), (da, dg))[1]
    scale = g * jnp.maximum(jnp.asarray(T, kappa.dtype), 1.0)
    D = _divided_differences(phi, d1, d3, _outer_sum(kappa, -kappa), scale, _CLOSE.get(kappa.dtype, 5e-2))
    W = U.T @ V
    E = U.T @ (0.5 * (dG + dG.T)) @ U
    out = U @ (phi[:, None] * W)
    dout = U @ ((D * E) @ W + dphi[:, None] * W + phi[:, None] * (U.T @ dV))
    return out, dout
