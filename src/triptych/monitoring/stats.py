"""The drift statistics, vectorised with numpy: one sort per sample, no loop over rows.

Each function takes clean arrays (missing values already removed) so the same code serves
features and the prediction column. The two-sample KS statistic and the Wasserstein-1
distance come from one merge of the two sorted samples: the running difference of the two
empirical CDFs, read at every distinct value, gives ``max |F_ref - F_cur|`` (KS) and, times
the gaps between values, ``integral |F_ref - F_cur|`` (W1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Floor for a bin's share in PSI, so an empty bin gives a large but finite term.
PSI_EPSILON = 1e-4
#: Number of reference-quantile bins for a numeric PSI.
PSI_BINS = 10


@dataclass(frozen=True)
class NumericStats:
    """Drift statistics of one numeric column (reference vs current)."""

    psi: float
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float
    """W1 divided by the reference's standard deviation (a shift of d std gives d)."""
    wasserstein_raw: float


@dataclass(frozen=True)
class CategoricalStats:
    """Drift statistics of one categorical column (reference vs current)."""

    psi: float
    chi2: float
    chi2_pvalue: float
    dof: int
    cramers_v: float
    """Effect size of the chi-square test: sqrt(chi2 / N) for a 2 x K table."""
    new_categories: list[Any]


def psi(ref_share: np.ndarray, cur_share: np.ndarray, eps: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins."""
    r = np.clip(ref_share, eps, None)
    c = np.clip(cur_share, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric(ref: np.ndarray, cur: np.ndarray) -> NumericStats:
    """PSI on reference-quantile bins, two-sample KS (asymptotic p) and normalised W1.

    ``ref`` and ``cur`` are float arrays, each with at least one value that is not NaN.
    NaN sorts last, so dropping it after the sort costs no copy.
    """
    a = np.sort(ref, kind="quicksort")
    b = np.sort(cur, kind="quicksort")
    a = a[: np.searchsorted(a, np.nan, side="left")]  # numpy orders NaN after everything
    b = b[: np.searchsorted(b, np.nan, side="left")]
    n, m = a.size, b.size

    # PSI: inner edges at the reference's deciles; bins are (-inf, e1], (e1, e2], ..., (ek, inf).
    edges = np.unique(a[(np.arange(1, PSI_BINS) * n) // PSI_BINS])
    ref_cum = np.searchsorted(a, edges, side="right")
    cur_cum = np.searchsorted(b, edges, side="right")
    ref_counts = np.diff(np.concatenate(([0], ref_cum, [n])))
    cur_counts = np.diff(np.concatenate(([0], cur_cum, [m])))
    psi_value = psi(ref_counts / n, cur_counts / m)

    # One merge of the two sorted runs (a stable sort of two runs is linear-time merging).
    merged = np.concatenate((a, b))
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    step = np.where(order < n, 1.0 / n, -1.0 / m)
    diff = np.cumsum(step)  # F_ref - F_cur just after each value (valid at the last of ties)
    last = np.empty(values.size, dtype=bool)
    np.not_equal(values[1:], values[:-1], out=last[:-1])
    last[-1] = True
    ks = float(np.max(np.abs(diff[last]))) if values.size else 0.0
    ks = min(max(ks, 0.0), 1.0)
    # Between two consecutive values the CDF difference is constant; ties contribute zero width.
    w1 = float(np.dot(np.abs(diff[:-1]), np.diff(values)))

    pvalue = ks_pvalue(ks, n, m)

    scale = float(np.std(a))
    # A constant reference scores 0 when unchanged, infinity on any change.
    wasserstein = w1 / scale if scale > 0 else (0.0 if w1 == 0 else float("inf"))
    return NumericStats(psi_value, ks, pvalue, wasserstein, w1)


#: Above this effective size, a p-value below ~0.025 comes from the limiting distribution.
EXACT_KS_MAX_N = 10_000


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided two-sample KS p-value, as ``scipy.stats.ks_2samp(method="asymp")``.

    That is ``kstwo.sf(D, round(n*m/(n+m)))``, except in one corner where scipy sums O(n)
    terms (about 0.1-0.3 s a call at a million rows): a large effective size together with
    ``n*D**2 >= 2.2`` (p below about 0.025). There the limiting Kolmogorov distribution
    ``kstwobign.sf(D*sqrt(n))`` is used; it differs from scipy's by a few percent of a p-value
    that is already far below any significance level.
    """
    from scipy.stats import kstwo, kstwobign

    big, small = max(n, m), min(n, m)
    en = float(np.round(big * small / (big + small)))
    if en > EXACT_KS_MAX_N and en * statistic * statistic >= 2.2:
        p = kstwobign.sf(statistic * np.sqrt(en))
    else:
        p = kstwo.sf(statistic, en)
    return float(np.clip(p, 0.0, 1.0))


def proportions_pvalue(k1: int, n1: int, k2: int, n2: int) -> float:
    """p-value of the chi-square test that two rates k1/n1 and k2/n2 are equal (2 x 2)."""
    from scipy.stats import chi2 as chi2_dist

    table = np.array([[k1, n1 - k1], [k2, n2 - k2]], dtype=float)
    cols = table.sum(axis=0)
    if np.any(cols == 0):
        return 1.0
    expected = np.outer(table.sum(axis=1), cols) / table.sum()
    return float(chi2_dist.sf(np.sum((table - expected) ** 2 / expected), 1))


def categorical(ref_counts: dict[Any, int], cur_counts: dict[Any, int]) -> CategoricalStats:
    """Chi-square test of homogeneity on the 2 x K count table, and PSI on the shares.

    The categories are the union of both samples: one seen only in the current data is
    counted (a zero in the reference row), not dropped.
    """
    from scipy.stats import chi2 as chi2_dist

    cats = list(ref_counts)
    cats += [c for c in cur_counts if c not in ref_counts]
    new = [c for c in cur_counts if c not in ref_counts]
    r = np.array([ref_counts.get(c, 0) for c in cats], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in cats], dtype=float)
    n_r, n_c = r.sum(), c.sum()
    total = n_r + n_c
    psi_value = psi(r / n_r, c / n_c)
    dof = len(cats) - 1
    if dof < 1:
        return CategoricalStats(psi_value, 0.0, 1.0, 0, 0.0, new)
    col = r + c
    exp_r = col * (n_r / total)
    exp_c = col * (n_c / total)
    chi2 = float(np.sum((r - exp_r) ** 2 / exp_r) + np.sum((c - exp_c) ** 2 / exp_c))
    pvalue = float(chi2_dist.sf(chi2, dof))
    cramers_v = float(np.sqrt(chi2 / total))
    return CategoricalStats(psi_value, chi2, pvalue, dof, cramers_v, new)
