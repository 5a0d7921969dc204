"""Predictive fields: the model recovers what generated synthetic histories, and known customers get known answers."""

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from saleor_flows import tasks
from saleor_flows.engine.conditions import EvalContext, evaluate, validate_condition
from saleor_flows.engine.predictive import BGNBD, Customer, GammaGamma, fit_bgnbd, fit_gamma_gamma, hyp2f1, refresh
from saleor_flows.models import Contact

NOW = datetime(2026, 6, 1, 3, 17, tzinfo=timezone.utc)
TRUTH = {"r": 0.8, "alpha": 40.0, "a": 0.7, "b": 2.5}  # rate in orders per day: Gamma(r, α); dropout: Beta(a, b)
SPEND = {"p": 6.0, "q": 4.0, "gamma": 20.0}  # mean order value p·γ/(q−1) = 40


def synthetic_customer(rng, T, horizon=0.0):
    """One customer drawn from the BG/NBD story; returns (history at T, orders in (T, T+horizon], alive at T)."""
    rate, dropout = rng.gammavariate(TRUTH["r"], 1 / TRUTH["alpha"]), rng.betavariate(TRUTH["a"], TRUTH["b"])
    nu = rng.gammavariate(SPEND["q"], 1 / SPEND["gamma"])
    times, dropped_at, t = [0.0], None, 0.0
    while dropped_at is None:
        t += rng.expovariate(rate)
        if t > T + horizon:
            break
        times.append(t)
        if rng.random() < dropout:
            dropped_at = t  # after a repeat order, gone for good
    past = [s for s in times if s <= T]
    values = [rng.gammavariate(SPEND["p"], 1 / nu) for _ in past]
    customer = Customer(x=len(past) - 1, t_x=past[-1], T=T, mean_value=sum(values) / len(values))
    return customer, len(times) - len(past), dropped_at is None or dropped_at > T


@pytest.fixture(scope="module")
def population():
    rng = random.Random(20260601)
    return [synthetic_customer(rng, T=rng.uniform(200, 700), horizon=180) for _ in range(2000)]


def test_fitted_parameters_are_close_to_the_truth(population):
    model = fit_bgnbd([c for c, _, _ in population])
    for name, true in TRUTH.items():
        assert getattr(model, name) == pytest.approx(true, rel=0.2), (name, model)


def test_predictions_match_what_happened_next(population):
    customers = [c for c, _, _ in population]
    model = fit_bgnbd(customers)
    predicted = sum(model.expected_orders(c, 180) for c in customers)
    actual = sum(future for _, future, _ in population)
    assert predicted == pytest.approx(actual, rel=0.05)
    # P(alive) is calibrated: its sum is the number of customers still active at T.
    assert sum(model.p_alive(c) for c in customers) == pytest.approx(
        sum(alive for _, _, alive in population), rel=0.05)
    # Churn risk is calibrated too: expected silent customers ≈ those with no order in the next 90 days
    # (checked against the 180-day horizon's share, which bounds it: silent for 180 ⇒ silent for 90).
    assert sum(model.p_no_order(c, 180) for c in customers) == pytest.approx(
        sum(future == 0 for _, future, _ in population), rel=0.05)


def test_gamma_gamma_recovers_the_mean_order_value(population):
    spend = fit_gamma_gamma([c for c, _, _ in population])
    assert spend.p * spend.gamma / (spend.q - 1) == pytest.approx(40.0, rel=0.1)


def test_expected_orders_formula_matches_direct_integration():
    # E[Y(t)] = P(alive) · E_p[(1 − ((α+T)/(α+T+p·t))^(r+x)) / p] with p ~ Beta(a, b+x), by the midpoint rule.
    model, c, t = BGNBD(**TRUTH), Customer(x=3, t_x=100.0, T=300.0), 180.0
    a, b, steps = TRUTH["a"], TRUTH["b"] + c.x, 200_000
    weights = [((i + 0.5) / steps) ** (a - 1) * (1 - (i + 0.5) / steps) ** (b - 1) for i in range(steps)]
    values = [(1 - ((40 + 300) / (40 + 300 + (i + 0.5) / steps * t)) ** (0.8 + 3)) / ((i + 0.5) / steps)
              for i in range(steps)]
    integral = sum(w * v for w, v in zip(weights, values)) / sum(weights)
    assert model.expected_orders(c, t) == pytest.approx(model.p_alive(c) * integral, rel=1e-3)


def test_a_customer_with_thousands_of_orders_gets_finite_answers():
    model, c = BGNBD(**TRUTH), Customer(x=5000, t_x=699.9, T=700.0)  # about seven orders a day, the last just now
    rate = (TRUTH["r"] + 5000) / (TRUTH["alpha"] + 700)  # orders a day while active (posterior mean)
    assert 0.9 * rate * 365 < model.expected_orders(c, 365) <= rate * 365
    assert 0 <= model.p_no_order(c, 90) < 1e-3  # (the small chance they stopped after the latest order)
    gone = Customer(x=5000, t_x=690.0, T=700.0)  # ... or ten silent days: ~70 orders missing, gone for sure
    assert model.p_alive(gone) < 1e-20 and model.expected_orders(gone, 365) < 1e-15


def test_hypergeometric_series_known_values():
    assert hyp2f1(1, 1, 2, 0.5) == pytest.approx(2 * 0.6931471805599453)  # −ln(1−z)/z
    assert hyp2f1(0.5, 1, 1, 0.75) == pytest.approx(2.0)  # (1−z)^−a


# --- on the database: the nightly refresh ----------------------------------------------------------

def _contact(email, orders: list[float], spent="0"):
    """A contact whose orders happened ``orders`` days before NOW (oldest first)."""
    kwargs = {}
    if orders:
        kwargs = {"order_count": len(orders), "first_order_at": NOW - timedelta(days=orders[0]),
                  "last_order_at": NOW - timedelta(days=orders[-1]), "total_spent": Decimal(spent)}
    return Contact(email=email, created_at=NOW - timedelta(days=800), updated_at=NOW, **kwargs)


@pytest.fixture
def shop(db, population):
    contacts = [_contact(f"c{i}@example.com", [c.T, c.T - c.t_x] if c.x else [c.T],
                         spent=f"{c.mean_value * (c.x + 1):.2f}") for i, (c, _, _) in enumerate(population[:400])]
    for i, (c, _, _) in enumerate(population[:400]):
        if c.x > 1:  # the contact row keeps only counts and first/last dates
            contacts[i].order_count = c.x + 1
    contacts.append(_contact("clockwork@example.com", [370 - 30 * k for k in range(13)], spent="520.00"))
    contacts.append(_contact("silent@example.com", [1090 - 30 * k for k in range(13)], spent="520.00"))
    contacts.append(_contact("browser@example.com", []))
    Contact.objects.bulk_create(contacts)


def test_refresh_stores_predictions_with_known_answers(shop):
    report = refresh(now=NOW)
    assert report["fitted"] and report["customers"] == 402
    clockwork = Contact.objects.get(email="clockwork@example.com")  # every 30 days, last 10 days ago
    assert clockwork.predicted_next_order_at == pytest.approx(NOW + timedelta(days=20), abs=timedelta(days=2))
    assert clockwork.churn_risk < 0.3
    # At most 12 orders a year of ≈ 40 (their own mean, shrunk toward the shop's 40); fewer in expectation,
    # since anyone may stop after any order.
    assert 0.6 * 12 * 40 < float(clockwork.predicted_clv) < 12 * 40
    assert clockwork.historic_clv == Decimal("520.00") and clockwork.predicted_at == NOW
    silent = Contact.objects.get(email="silent@example.com")  # the same rhythm, then two years of silence
    assert silent.churn_risk > 0.99 and float(silent.predicted_clv) < 1
    browser = Contact.objects.get(email="browser@example.com")  # never ordered: nothing to predict
    assert (browser.churn_risk, browser.predicted_clv, browser.predicted_next_order_at) == (None, None, None)


def test_conditions_can_use_the_predicted_fields(shop):
    condition = {"all": [{"field": "contact.churn_risk", "op": "gt", "value": 0.7},
                         {"field": "contact.historic_clv", "op": "gte", "value": 100},
                         {"field": "contact.predicted_next_order_at", "op": "before", "value": "2026-05-01"}]}
    assert validate_condition(condition) == []
    tasks.refresh_predictions()  # the nightly task (clock: now)
    refresh(now=NOW)
    decide = {c.email: evaluate(condition, EvalContext(contact=c.as_context(), event=None, now=NOW)).result
              for c in Contact.objects.filter(email__in=["clockwork@example.com", "silent@example.com"])}
    assert decide == {"clockwork@example.com": False, "silent@example.com": True}


def test_too_few_customers_fit_nothing(db):
    Contact.objects.bulk_create([_contact("one@example.com", [30, 10], spent="10")])
    assert refresh(now=NOW)["fitted"] is False
    assert Contact.objects.get().churn_risk is None


def test_population_order_value_is_the_fallback_for_one_order_customers():
    spend = GammaGamma(**SPEND)
    assert spend.expected_value(Customer(x=0, t_x=0, T=10, mean_value=400.0), 1) == pytest.approx(
        (6 * 400 + 3 * 40) / (6 + 3))  # a one-order whale is pulled toward the shop's 40, not set to it
