"""Measurements on weight matrices, gradients and networks (THEOREMS.md, "Spectra").

Pure functions over tensors; every one is tested against a brute-force numpy reference.

- singular values σ_1 ≥ σ_2 ≥ …;
- stable rank sr(W) = ‖W‖_F² / σ_1²;
- numerical rank rank_tol(W) = #{i : σ_i(W/‖W‖_F) > tol} (tol 1e-3 as in the code of
  Galanti et al., arXiv:2206.05794 v7), also from given singular values (spectrum_rank);
- distance to rank k: absolute D_k(W) = sqrt(Σ_{i>k} σ_i²) and relative d_k = D_k/‖W‖_F
  (Eckart–Young: the Frobenius distance to the nearest matrix of rank ≤ k), for every k at
  once from given singular values (spectrum_tails);
- the alignment cosine cos(A, B) = ⟨A, B⟩ / (‖A‖_F ‖B‖_F);
- layer norms ‖W_k‖_F;
- the component of W_1 outside the data span, W_1 P_⊥ with P_⊥ = I − P_span(X).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def singular_values(W: Tensor) -> Tensor:
    """σ_1 ≥ σ_2 ≥ … ≥ σ_min(m,n) of a matrix (float64 on its device)."""
    return torch.linalg.svdvals(W.detach().to(torch.float64))


def frobenius(W: Tensor) -> float:
    return float(torch.linalg.norm(W.detach().to(torch.float64)))


def stable_rank(W: Tensor) -> float:
    """sr(W) = ‖W‖_F² / σ_1²; 0 for the zero matrix."""
    s = singular_values(W)
    return 0.0 if float(s[0]) == 0.0 else float((s**2).sum() / s[0] ** 2)


def numerical_rank(W: Tensor, tol: float = 1e-3) -> int:
    """#{i : σ_i(W/‖W‖_F) > tol}."""
    return int(spectrum_rank(singular_values(W), tol))


def spectrum_rank(s: Tensor, tol: float = 1e-3) -> Tensor:
    """rank_tol from singular values ``s`` (last axis; batched over the others, e.g. one row
    per iterate of a trajectory): #{i : σ_i/‖σ‖_2 > tol}, 0 for a zero row."""
    fro = torch.linalg.norm(s, dim=-1, keepdim=True)
    safe = torch.where(fro > 0, fro, torch.ones_like(fro))
    return ((s / safe > tol) & (fro > 0)).sum(dim=-1)


def spectrum_tails(s: Tensor) -> Tensor:
    """D_k = sqrt(Σ_{i>k} σ_i²) for every k = 0 … r from singular values ``s`` (last axis
    of length r, batched over the others): D_0 = ‖W‖_F, D_r = 0. Summed from the smallest
    σ up, so that a small tail keeps its relative accuracy."""
    sq = torch.flip(torch.cumsum(torch.flip(s.to(torch.float64) ** 2, [-1]), -1), [-1])
    zero = torch.zeros((*s.shape[:-1], 1), dtype=sq.dtype, device=sq.device)
    return torch.cat([sq, zero], dim=-1).sqrt()


def tail_distance(W: Tensor, k: int) -> float:
    """D_k(W) = sqrt(Σ_{i>k} σ_i²), the Frobenius distance to the nearest rank-≤k matrix."""
    if k < 0:
        raise ValueError(f"k={k} must be ≥ 0")
    s = singular_values(W)
    return float(torch.linalg.norm(s[k:])) if k < len(s) else 0.0


def relative_tail_distance(W: Tensor, k: int) -> float:
    """d_k(W) = D_k(W)/‖W‖_F; 0 for the zero matrix."""
    fro = frobenius(W)
    return 0.0 if fro == 0.0 else tail_distance(W, k) / fro


def gap_ratio(W: Tensor, k: int) -> float:
    """σ_{k+1}/σ_1 (0 when W has at most k singular values or is zero)."""
    s = singular_values(W)
    return float(s[k] / s[0]) if k < len(s) and float(s[0]) > 0 else 0.0


def cosine(A: Tensor | Sequence[Tensor], B: Tensor | Sequence[Tensor]) -> float:
    """⟨A, B⟩/(‖A‖‖B‖), for two tensors or two matching sequences of tensors (θ as a whole)."""
    As = [A] if isinstance(A, Tensor) else list(A)
    Bs = [B] if isinstance(B, Tensor) else list(B)
    dot = sum(float((a.double() * b.double()).sum()) for a, b in zip(As, Bs, strict=True))
    na = sum(float((a.double() ** 2).sum()) for a in As) ** 0.5
    nb = sum(float((b.double() ** 2).sum()) for b in Bs) ** 0.5
    return float("nan") if na == 0.0 or nb == 0.0 else dot / (na * nb)


def layer_norms(Ws: Sequence[Tensor]) -> list[float]:
    """‖W_k‖_F for each layer."""
    return [frobenius(W) for W in Ws]


def span_projector(X: Tensor, rtol: float | None = None) -> Tensor:
    """P_⊥ = I − U Uᵀ, the projector onto span(X)^⊥ for row-wise data X ∈ R^{n×d}.

    U spans the row space of X (the column span of the paper's X ∈ R^{d×n}); singular
    directions with σ ≤ rtol·σ_1 count as outside the span (default: max(n, d)·eps, as
    numpy's matrix_rank).
    """
    Xd = X.detach().to(torch.float64)
    _, s, Vh = torch.linalg.svd(Xd, full_matrices=True)
    d = Xd.shape[1]
    if rtol is None:
        rtol = max(Xd.shape) * torch.finfo(torch.float64).eps
    r = int((s > rtol * s[0]).sum()) if len(s) and float(s[0]) > 0 else 0
    U = Vh[:r].T
    return torch.eye(d, dtype=torch.float64, device=X.device) - U @ U.T


def outside_span(W1: Tensor, P_perp: Tensor) -> float:
    """‖W_1 P_⊥‖_F: how much of W_1's row space lies outside span(X)."""
    return frobenius(W1.detach().to(torch.float64) @ P_perp)


def frobenius_all(tensors: Sequence[Tensor]) -> float:
    """‖θ‖ = sqrt(Σ ‖T‖_F²) over several tensors."""
    return float(sum(float((t.detach().double() ** 2).sum()) for t in tensors) ** 0.5)


EPS64 = 2.220446049250313e-16


def outer_sum_rank_tol(a: Tensor, b: Tensor, G: Tensor) -> float:
    """Relative singular-value level below which σ_i(Ĝ)/‖Ĝ‖_F is float64 rounding, for a
    matrix G = Σ_{k≤N} a_k b_kᵀ computed in float64 (rows of ``a``, ``b`` are the terms).

    A sum of N products has an entrywise error ≤ N·eps·Σ_k |a_k||b_k|ᵀ (Higham, summation
    bound), so ‖Ĝ − G‖_F ≤ N·eps·Σ_k ‖a_k‖‖b_k‖; a backward-stable SVD adds ≤ d·eps·‖G‖_F
    (d = the larger dimension). By Weyl, σ_{r+1}(Ĝ) is at most their sum when rank G = r.
    """
    a2 = a.detach().reshape(-1, a.shape[-1]).to(torch.float64)
    b2 = b.detach().reshape(-1, b.shape[-1]).to(torch.float64)
    fro = frobenius(G)
    if fro == 0.0:
        return 0.0
    terms = float((torch.linalg.norm(a2, dim=1) * torch.linalg.norm(b2, dim=1)).sum())
    return EPS64 * (a2.shape[0] * terms + max(G.shape) * fro) / fro


def outer_sum_rank(a: Tensor, b: Tensor, G: Tensor) -> tuple[int, float]:
    """(rank, level): the rank of G = Σ_k a_k b_kᵀ counting the singular values above its
    float64 rounding level (:func:`outer_sum_rank_tol`), and that level; (0, 0) for G = 0."""
    tol = outer_sum_rank_tol(a, b, G)
    return (numerical_rank(G, tol) if tol > 0 else 0), tol
