"""The account analyses' arithmetic without a database: BG/NBD and Gamma-Gamma
recover the parameters of data simulated from them, the conditional expectation
matches simulated future purchases, RFM quintiles score ties alike, the cohort
table drops what happened before signup, and the charts escape their text."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from analytics import btyd
from analytics.charts import cohort_heatmap, funnel_bars
from analytics.cohorts import cohort_table
from analytics.rfm import SEGMENTS, quintile_scores, rfm_table, segment_of

TRUE_BGNBD = (0.25, 4.0, 0.8, 2.5)  # near Fader, Hardie and Lee's CDNOW estimates, in weeks
TRUE_GG = (6.0, 4.0, 15.0)


def _simulate_bgnbd(n: int, params: tuple[float, ...], rng: np.random.Generator, horizon: float = 0.0):
    """Customers of the model: (x, t_x, T) over an age T of 26-52 weeks after the
    first purchase, and the purchases in the ``horizon`` weeks after T."""
    r, alpha, a, b = params
    rate, drop = rng.gamma(r, 1 / alpha, n), rng.beta(a, b, n)
    big_t = rng.uniform(26, 52, n)
    x, t_x, future, t = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        t = t + rng.exponential(1 / np.maximum(rate, 1e-12))
        seen, later = alive & (t < big_t), alive & (t >= big_t) & (t < big_t + horizon)
        x[seen] += 1
        t_x[seen] = t[seen]
        future[later] += 1
        alive = (seen | later) & (rng.uniform(size=n) >= drop)
    return x, t_x, big_t, future


def _standard_errors(log_likelihood, estimate: np.ndarray) -> np.ndarray:
    """From the observed information: the inverse Hessian of the total negative log
    likelihood at the estimate, by central differences."""
    k = len(estimate)
    steps = 1e-4 * estimate
    hessian = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            def at(di: float, dj: float) -> float:
                point = estimate.copy()
                point[i] += di * steps[i]
                point[j] += dj * steps[j]
                return -log_likelihood(point)
            hessian[i, j] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * steps[i] * steps[j])
    return np.sqrt(np.diag(np.linalg.inv(hessian)))


def test_bgnbd_recovers_the_parameters_it_was_simulated_with_within_four_standard_errors():
    """10,000 customers give standard errors of a few percent; a correct fit lands
    within 4 of them with probability above 0.9999 per parameter."""
    x, t_x, big_t, _ = _simulate_bgnbd(10_000, TRUE_BGNBD, np.random.default_rng(2024))
    fitted = btyd.fit_bgnbd(x, t_x, big_t)
    estimate = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    errors = _standard_errors(lambda p: float(np.sum(btyd.bgnbd_log_likelihood(p, x, t_x, big_t))), estimate)
    assert np.all(errors < 0.25 * estimate)  # the sample is informative enough for the check to mean something
    assert np.all(np.abs(estimate - TRUE_BGNBD) < 4 * errors), (estimate, errors)


def test_the_expected_purchases_match_what_simulated_customers_went_on_to_buy():
    """Given the true parameters, the conditional expectation of purchases in the
    next 52 weeks equals, on average, what the same customers bought then; checked
    overall and for customers with 0, 1 and 3 repeat purchases, within 4 standard
    errors of each group's simulated mean."""
    x, t_x, big_t, future = _simulate_bgnbd(40_000, TRUE_BGNBD, np.random.default_rng(7), horizon=52.0)
    expected = btyd.expected_purchases(btyd.BgNbd(*TRUE_BGNBD), 52.0, x, t_x, big_t)
    for group in (np.ones_like(x, dtype=bool), x == 0, x == 1, x == 3):
        assert group.sum() > 1000
        spread = future[group].std() / np.sqrt(group.sum())
        assert abs(expected[group].mean() - future[group].mean()) < 4 * spread


def test_gamma_gamma_recovers_the_spend_parameters_within_four_standard_errors():
    rng = np.random.default_rng(11)
    n = 10_000
    p, q, gamma = TRUE_GG
    counts = rng.integers(1, 8, n)
    scale = rng.gamma(q, 1 / gamma, n)  # nu, the customer's rate
    means = np.array([rng.gamma(p, 1 / nu, k).mean() for nu, k in zip(scale, counts)])
    fitted = btyd.fit_gamma_gamma(counts, means)
    estimate = np.array([fitted.p, fitted.q, fitted.gamma])
    errors = _standard_errors(lambda v: float(np.sum(btyd.gamma_gamma_log_likelihood(v, counts, means))), estimate)
    assert np.all(np.abs(estimate - TRUE_GG) < 4 * errors), (estimate, errors)
    # a customer's expected spend lies between the population's mean and its own
    population = fitted.p * fitted.gamma / (fitted.q - 1)
    own = btyd.expected_value(fitted, counts, means)
    assert np.all((own - population) * (means - population) >= -1e-9)


def test_quintile_scores_score_equal_values_alike():
    assert quintile_scores(pd.Series([1, 1, 1, 2, 3])).tolist() == [1, 1, 1, 4, 5]
    assert quintile_scores(pd.Series([40, 30, 20, 10, 1]), higher_is_better=False).tolist() == [1, 2, 3, 4, 5]
    assert quintile_scores(pd.Series(range(10))).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_every_recency_and_frequency_pair_has_exactly_one_segment():
    names = [segment_of(r, f) for r in range(1, 6) for f in range(1, 6)]
    assert set(names) == set(SEGMENTS)
    assert (segment_of(5, 5), segment_of(1, 1), segment_of(2, 3), segment_of(5, 1)) == (
        "champions", "hibernating", "at_risk", "new_customers")


def test_an_account_with_no_purchases_has_every_segment_empty():
    empty = pd.DataFrame({"subscriber_id": [], "cohort": [], "transactions": [], "revenue": [], "first_at": [],
                          "last_at": []})
    answer = rfm_table(empty, 7, 1_000_000.0)
    assert (answer["customers"], answer["subscribers_without_value"], answer["scores"]) == (0, 7, [])
    assert all(s["customers"] == 0 for s in answer["segments"])


def test_the_cohort_table_leaves_out_engagement_before_signup_and_weeks_not_begun():
    sizes = pd.DataFrame({"cohort": [100, 101], "subscribers": [10, 4]})
    engaged = pd.DataFrame({"cohort": [100, 100, 100, 101], "offset": [-1, 0, 2, 0], "engaged": [9, 5, 1, 4]})
    answer = cohort_table(sizes, engaged, this_week=102)
    assert [(c["subscribers"], c["engaged"], c["shares"]) for c in answer["cohorts"]] == [
        (10, [5, 0, 1], [0.5, 0.0, 0.1]), (4, [4, 0], [1.0, 0.0])]
    assert answer["subscribers"] == 14


def test_the_charts_escape_their_text_and_parse_as_svg():
    heatmap = cohort_heatmap({"cohorts": [{"cohort": "2026-11-02", "subscribers": 3, "engaged": [1], "shares": [0.3333]}]},
                             title="</title><script>x()</script>")
    root = ET.fromstring(heatmap)
    assert root.find("{http://www.w3.org/2000/svg}title").text == "</title><script>x()</script>"
    assert "<script>" not in heatmap
    bars = funnel_bars([{"step": 0, "type": "email\x00<b>", "entered": 2, "passed": 1, "exited": 1, "waiting": 0}])
    assert "<b>" not in bars and ET.fromstring(bars) is not None


def test_a_customer_with_hundreds_of_purchases_gets_a_finite_prediction():
    """Eq. 10 as printed overflows its hypergeometric series for such a customer."""
    expected = btyd.expected_purchases(btyd.BgNbd(*TRUE_BGNBD), 52.0, np.array([300.0, 0.0]), np.array([52.0, 0.0]),
                                       np.array([52.0, 52.0]))
    assert np.all(np.isfinite(expected)) and expected[0] > 100 * expected[1] > 0


def test_the_log_series_agrees_with_scipy_and_saves_the_fits_scipy_cannot_evaluate():
    from scipy.special import hyp2f1

    a, b, c, z = np.array([3.5, 40.0]), np.array([2.0, 7.0]), np.array([4.0, 30.0]), np.array([0.3, 0.02])
    assert btyd._log_hyp2f1(a, b, c, z) == pytest.approx(np.log(hyp2f1(a, b, c, z)), rel=1e-10)
    # customers buying like clockwork: the fit runs to huge r and alpha (a Poisson rate of r / alpha)
    clockwork = btyd.BgNbd(r=14450.0, alpha=22026.0, a=22.2, b=85.7)
    expected = btyd.expected_purchases(clockwork, 52.0, np.array([0.0, 3.0]), np.array([0.0, 3.0]),
                                       np.array([1.0, 3.1]))
    assert np.all(np.isfinite(expected)) and np.all((expected > 0) & (expected < 52 * 14450 / 22026))
