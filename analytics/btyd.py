"""Predicted customer value: the BG/NBD model of repeat purchases and the
Gamma-Gamma model of spend per purchase, fitted by maximum likelihood.

- BG/NBD: P. S. Fader, B. G. S. Hardie and K. L. Lee, "'Counting Your Customers'
  the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2),
  2005, pp. 275-284 (likelihood: eq. 6; conditional expectation: eq. 10). While
  alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each
  purchase they drop out with probability p ~ Beta(a, b).
- Gamma-Gamma: P. S. Fader, B. G. S. Hardie and K. L. Lee, "RFM and CLV: Using
  Iso-Value Curves for Customer Base Analysis", Journal of Marketing Research
  42(4), 2005, pp. 415-430, and B. G. S. Hardie's note "The Gamma-Gamma Model of
  Monetary Value" (2013). Each purchase's value ~ Gamma(p, nu), nu ~ Gamma(q, gamma),
  independent of the purchase process.

A customer is (x, t_x, T): repeat purchases after the first, the time of the last
one and the age, both measured from the first purchase. Written here with
scipy.optimize rather than a library: ``lifetimes`` is archived (2020), ``btyd``
never left beta (2022), and pymc-marketing brings PyMC and a compiler toolchain
for two closed-form likelihoods. No I/O: arrays in, numbers out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

# The optimiser works on log parameters (all must be positive), from a start that
# suits purchase data measured in weeks.
_BGNBD_START = np.log([0.5, 5.0, 1.0, 2.0])
_GG_START = np.log([2.0, 2.0, 10.0])


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    """Each customer's log likelihood under (r, alpha, a, b) (Fader, Hardie and Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        # dropped out right after the last purchase: only when there was a repeat purchase
        dropped = np.where(x > 0, betaln(a + 1, np.maximum(b + x - 1, 1e-12)) - betaln(a, b)
                           - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(alive, dropped)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> BgNbd:
    """The maximum-likelihood (r, alpha, a, b) for customers (x, t_x, T)."""
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))

    def negative(log_params: np.ndarray) -> float:
        return -float(np.sum(bgnbd_log_likelihood(np.exp(log_params), x, t_x, big_t))) / len(x)

    fitted = minimize(negative, _BGNBD_START, method="L-BFGS-B", bounds=[(-10.0, 10.0)] * 4)
    return BgNbd(*(float(v) for v in np.exp(fitted.x)))


def expected_purchases(model: BgNbd, horizon: float, x: np.ndarray, t_x: np.ndarray,
                       big_t: np.ndarray) -> np.ndarray:
    """Each customer's expected purchases in the next ``horizon`` (eq. 10). The formula
    has a removable singularity at a = 1, stepped around."""
    r, alpha, b = model.r, model.alpha, model.b
    a = model.a if abs(model.a - 1.0) > 1e-6 else 1.0 + 1e-6
    x, t_x, big_t = (np.asarray(v, dtype=float) for v in (x, t_x, big_t))
    z = horizon / (alpha + big_t + horizon)
    head = (a + b + x - 1) / (a - 1)
    # Eq. 10 has (1 - z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z); for a customer with many
    # purchases the power underflows while the series overflows. Euler's
    # transformation, 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z), turns the
    # product into (1 - z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), finite for all x;
    # but when the fit runs to very large r (customers buying like clockwork) its
    # series alternates and scipy gives up (NaN), where the printed form is fine.
    with np.errstate(all="ignore"):
        tail = 1 - (1 - z) ** (a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        printed = 1 - (1 - z) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
    tail = np.where(np.isfinite(tail), tail, printed)
    lost = ~np.isfinite(tail)
    if lost.any():
        big_a, big_b, big_c = (np.broadcast_to(v, x.shape)[lost] for v in (r + x, b + x, a + b + x - 1))
        zs = np.broadcast_to(z, x.shape)[lost]
        tail[lost] = 1 - np.exp(big_a * np.log1p(-zs) + _log_hyp2f1(big_a, big_b, big_c, zs))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + big_t) / (alpha + t_x)) ** (r + x), 0.0)
    return head * tail / (1 + odds)


def _log_hyp2f1(a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, max_terms: int = 20_000) -> np.ndarray:
    """log 2F1(a, b; c; z) for a, b, c > 0 and 0 <= z < 1, summing the series in logs
    (all its terms are positive): for the parameters scipy cannot handle, which come
    from fits to customers with almost no spread in their buying rate. NaN where it
    has not converged in ``max_terms``."""
    log_term = np.zeros_like(z)
    log_sum = np.zeros_like(z)
    log_z = np.log(np.maximum(z, 1e-300))
    for n in range(max_terms):
        log_term = log_term + np.log(a + n) + np.log(b + n) - np.log(c + n) - np.log(n + 1) + log_z
        log_sum = np.logaddexp(log_sum, log_term)
        shrinking = (a + n) * (b + n) * z < (c + n) * (n + 1)
        if np.all(shrinking & (log_term - log_sum < -40)):
            return log_sum
    return np.where(log_term - log_sum < -40, log_sum, np.nan)


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """Each customer's log likelihood of the mean ``mean_value`` of its ``x`` purchases
    (Hardie 2013, eq. 5, without the terms that do not depend on the parameters)."""
    p, q, gamma = params
    px = p * x
    return (gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(gamma)
            + (px - 1) * np.log(mean_value) + px * np.log(x) - (px + q) * np.log(gamma + mean_value * x))


def fit_gamma_gamma(x: np.ndarray, mean_value: np.ndarray) -> GammaGamma:
    """The maximum-likelihood (p, q, gamma) for customers with ``x`` >= 1 purchases of
    mean value ``mean_value`` > 0."""
    x, mean_value = np.asarray(x, dtype=float), np.asarray(mean_value, dtype=float)

    def negative(log_params: np.ndarray) -> float:
        return -float(np.sum(gamma_gamma_log_likelihood(np.exp(log_params), x, mean_value))) / len(x)

    fitted = minimize(negative, _GG_START, method="L-BFGS-B", bounds=[(-10.0, 10.0)] * 3)
    return GammaGamma(*(float(v) for v in np.exp(fitted.x)))


def expected_value(model: GammaGamma, x: np.ndarray, mean_value: np.ndarray) -> np.ndarray:
    """Each customer's expected value of a future purchase, given its ``x`` purchases'
    mean (Hardie 2013, eq. 6): a weighted average of the population mean and its own."""
    p, q, gamma = model.p, max(model.q, 1.0 + 1e-6), model.gamma
    x, mean_value = np.asarray(x, dtype=float), np.asarray(mean_value, dtype=float)
    return p * (gamma + x * mean_value) / (p * x + q - 1)
