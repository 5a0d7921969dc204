"""Predictive profile fields from order history, fitted on the shop's own customers (docs/predictive.md).

The model is BG/NBD (Fader, Hardie & Lee, "Counting Your Customers the Easy
Way", Marketing Science 2005) for *when and whether* a customer orders again,
and Gamma-Gamma (Fader, Hardie & Lee, "RFM and CLV", JMR 2005) for *how much*:

* while active, a customer orders as a Poisson process with rate λ;
  λ varies across customers as Gamma(r, α);
* after each order the customer drops out for good with probability p;
  p varies across customers as Beta(a, b);
* the value of a customer's orders is Gamma(p_, ν) around their own mean,
  with ν varying across customers as Gamma(q, γ).

Each contact is summarized by x (repeat orders = order_count − 1), t_x (days
from first to last order) and T (days from first order to now), all read
from the contact row, which the engine keeps current from order events. The
four BG/NBD parameters (and the three Gamma-Gamma ones) are fitted by
maximum likelihood over the shop's customers with a small Nelder–Mead
search on log-parameters. From them, for each contact:

* ``churn_risk`` = P(no order in the next 90 days)
  = 1 − P(alive) · (1 − ((α+T)/(α+T+90))^(r+x))
* ``predicted_next_order_at`` = last order + (α + t_x)/(r + x): the inverse of the
  contact's own order rate while active, shrunk toward the shop's (so a
  customer ordering every 30 days like clockwork is expected 30 days after
  their last order, and a one-order customer after the shop's typical gap).
  A date in the past means "overdue"; churn_risk says how worrying that is.
* ``predicted_clv`` = E[orders in the next 365 days] × E[order value], undiscounted.
* ``historic_clv`` = total spent so far (a property of the contact, always current).

No outside service and no numerical library: the standard library's ``math``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import connection, transaction

from .. import clock

CHURN_DAYS = 90
CLV_DAYS = 365
FIT_SAMPLE = 5_000  # customers used for fitting (everyone is scored): ample for four parameters
BATCH = 1000
DAY = 86400.0


@dataclass(frozen=True)
class Customer:
    x: int  # repeat orders
    t_x: float  # days from first to last order
    T: float  # days from first order to now
    mean_value: float = 0.0  # average order value


@dataclass(frozen=True)
class BGNBD:
    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, c: Customer) -> float:
        """P(still active | x, t_x, T) (FHL 2005, eq. 13), in log space: x can be in the thousands."""
        if c.x == 0:
            return 1.0  # the model's known blind spot: no repeat order, no evidence of dropping out
        log_ratio = (self.r + c.x) * math.log((self.alpha + c.T) / (self.alpha + c.t_x))
        log_odds = math.log(self.a / (self.b + c.x - 1)) + log_ratio
        return 1.0 / (1.0 + math.exp(min(log_odds, 700.0)))

    def p_no_order(self, c: Customer, days: float) -> float:
        """P(no order in the next ``days``): gone, or alive and the Poisson clock stays silent."""
        alive = self.p_alive(c)
        silent = ((self.alpha + c.T) / (self.alpha + c.T + days)) ** (self.r + c.x)
        return (1.0 - alive) + alive * silent

    def expected_orders(self, c: Customer, days: float) -> float:
        """E[orders in the next ``days`` | history] (FHL 2005, eq. 10; its denominator is 1 / P(alive))."""
        r, alpha, a, b, x = self.r, self.alpha, self.a, self.b, c.x
        alive = self.p_alive(c)
        if alive == 0.0:
            return 0.0
        if abs(a - 1.0) < 1e-6:
            a = 1.0 + 1e-6  # the formula's removable singularity
        shrink = (alpha + c.T) / (alpha + c.T + days)
        series = hyp2f1(r + x, b + x, a + b + x - 1, days / (alpha + c.T + days))
        expected = (a + b + x - 1) / (a - 1) * (1.0 - shrink ** (r + x) * series) * alive
        if not math.isfinite(expected):
            # Thousands of orders overflow the series; such a customer's dropout risk over the horizon
            # is negligible next to their rate: the Poisson expectation while active.
            expected = alive * (r + x) / (alpha + c.T) * days
        return max(0.0, expected)

    def expected_gap(self, c: Customer) -> float:
        """Days between orders while active: 1 / the posterior mean order rate over the active span."""
        return (self.alpha + c.t_x) / (self.r + c.x)


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    gamma: float

    def expected_value(self, c: Customer, orders: int) -> float:
        """E[order value | the customer's ``orders`` orders averaging ``c.mean_value``]."""
        population = self.p * self.gamma / (self.q - 1)
        weight = self.p * orders / (self.p * orders + self.q - 1)
        return (1 - weight) * population + weight * c.mean_value


def hyp2f1(a: float, b: float, c: float, z: float, *, tolerance=1e-12, max_terms=100_000) -> float:
    """Gauss's hypergeometric series 2F1(a, b; c; z) for 0 <= z < 1."""
    term, total = 1.0, 1.0
    for k in range(max_terms):
        term *= (a + k) * (b + k) / ((c + k) * (k + 1)) * z
        total += term
        if abs(term) < tolerance * abs(total) or not math.isfinite(total):
            break
    return total


# --- fitting -----------------------------------------------------------------------

def _bgnbd_loglik(params, groups) -> float:
    """Sum of log-likelihoods (FHL 2005, eq. 6), over (x, t_x, T, weight) groups."""
    r, alpha, a, b = params
    lg = math.lgamma
    base = lg(a + b) - lg(b) - lg(r) + r * math.log(alpha)
    per_x = {}
    total = 0.0
    for x, t_x, T, weight in groups:
        if x not in per_x:
            per_x[x] = (lg(r + x) + lg(b + x) - lg(a + b + x),
                        math.log(a) - math.log(b + x - 1) if x > 0 else None)
        shared, dropout = per_x[x]
        a3 = -(r + x) * math.log(alpha + T)
        if dropout is None:
            total += weight * (base + shared + a3)
        else:
            a4 = dropout - (r + x) * math.log(alpha + t_x)
            high = max(a3, a4)
            total += weight * (base + shared + high + math.log(math.exp(a3 - high) + math.exp(a4 - high)))
    return total


def _gamma_gamma_loglik(params, groups) -> float:
    """Over (n, mean, log mean, log n, weight) rows; the terms that depend on n alone are computed once per n."""
    p, q, gamma = params
    lg = math.lgamma
    per_n = {}
    total = 0.0
    for n, mean, log_mean, log_n, weight in groups:
        if n not in per_n:
            per_n[n] = lg(p * n + q) - lg(p * n) - lg(q) + q * math.log(gamma)
        total += weight * (per_n[n] + (p * n - 1) * log_mean + p * n * log_n - (p * n + q) * math.log(gamma + n * mean))
    return total


def nelder_mead(f, start, *, step=0.5, tolerance=1e-9, max_iterations=2000):
    """Minimize ``f`` from ``start`` (Nelder & Mead 1965, standard coefficients)."""
    n = len(start)
    simplex = [list(start)] + [[v + (step if i == j else 0.0) for j, v in enumerate(start)] for i in range(n)]
    values = [f(point) for point in simplex]
    for _ in range(max_iterations):
        order = sorted(range(n + 1), key=values.__getitem__)
        simplex, values = [simplex[i] for i in order], [values[i] for i in order]
        if abs(values[-1] - values[0]) <= tolerance * (abs(values[0]) + tolerance):
            break
        centroid = [sum(point[j] for point in simplex[:-1]) / n for j in range(n)]

        def towards(coefficient):
            return [c + coefficient * (w - c) for c, w in zip(centroid, simplex[-1])]

        reflected = towards(-1.0)
        fr = f(reflected)
        if fr < values[0]:
            expanded = towards(-2.0)
            fe = f(expanded)
            simplex[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            simplex[-1], values[-1] = reflected, fr
        else:
            contracted = towards(0.5) if fr >= values[-1] else towards(-0.5)
            fc = f(contracted)
            if fc < min(fr, values[-1]):
                simplex[-1], values[-1] = contracted, fc
            else:  # shrink toward the best point
                best = simplex[0]
                simplex = [best] + [[b + 0.5 * (v - b) for b, v in zip(best, point)] for point in simplex[1:]]
                values = [values[0]] + [f(point) for point in simplex[1:]]
    best = min(range(n + 1), key=values.__getitem__)
    return simplex[best]


def _fit_log_params(loglik, groups, start) -> list[float]:
    count = sum(group[-1] for group in groups)  # the weight is every row's last item

    def objective(logs):
        if any(abs(v) > 30 for v in logs):
            return math.inf
        try:
            return -loglik([math.exp(v) for v in logs], groups) / count
        except (ValueError, OverflowError, ZeroDivisionError):
            return math.inf

    logs = nelder_mead(objective, [math.log(v) for v in start])
    logs = nelder_mead(objective, logs, step=0.1)  # a restart from the optimum: Nelder–Mead can stall
    return [math.exp(v) for v in logs]


def fit_bgnbd(customers: list[Customer]) -> BGNBD:
    groups: dict[tuple, int] = {}
    for c in customers:
        key = (c.x, float(round(c.t_x)), float(round(c.T)))  # whole days: many customers share a row
        groups[key] = groups.get(key, 0) + 1
    rows = [(*key, weight) for key, weight in groups.items()]
    mean_T = sum(c.T for c in customers) / len(customers)
    return BGNBD(*_fit_log_params(_bgnbd_loglik, rows, [1.0, max(mean_T, 1.0) / 10, 1.0, 3.0]))


def fit_gamma_gamma(customers: list[Customer]) -> GammaGamma | None:
    """Fitted on customers with more than one order and a positive mean value; None if too few."""
    rows = [(c.x + 1, c.mean_value, math.log(c.mean_value), math.log(c.x + 1), 1)
            for c in customers if c.x > 0 and c.mean_value > 0]
    if len(rows) < 10:
        return None
    mean = sum(row[1] for row in rows) / len(rows)
    p, q, gamma = _fit_log_params(_gamma_gamma_loglik, rows, [2.0, 3.0, mean])
    if q <= 1:
        return None  # no finite mean spend: fall back to each customer's own average
    return GammaGamma(p, q, gamma)


# --- applying ---------------------------------------------------------------------------

@dataclass
class Prediction:
    next_order_at: object
    churn_risk: float
    predicted_clv: Decimal
    p_alive: float


def summarize(contact, now) -> Customer | None:
    if not contact.order_count or contact.first_order_at is None:
        return None
    last = contact.last_order_at or contact.first_order_at
    return Customer(x=contact.order_count - 1, t_x=max(0.0, (last - contact.first_order_at).total_seconds() / DAY),
                    T=max(0.0, (now - contact.first_order_at).total_seconds() / DAY),
                    mean_value=float(contact.total_spent) / contact.order_count)


def predict(contact, model: BGNBD, spend: GammaGamma | None, now) -> Prediction | None:
    c = summarize(contact, now)
    if c is None:
        return None
    last = contact.last_order_at or contact.first_order_at
    value = spend.expected_value(c, c.x + 1) if spend else c.mean_value
    orders = model.expected_orders(c, CLV_DAYS)
    return Prediction(
        next_order_at=last + timedelta(days=model.expected_gap(c)),
        churn_risk=round(model.p_no_order(c, CHURN_DAYS), 4),
        predicted_clv=Decimal(str(round(orders * value, 2))),
        p_alive=model.p_alive(c),
    )


def refresh(*, now=None, sample_size: int = FIT_SAMPLE, seed: int = 0) -> dict:
    """Refit on the shop's customers and store every customer's predictions (the nightly task)."""
    from ..models import Contact

    now = now or clock.now()
    buyers = Contact.objects.filter(order_count__gt=0, first_order_at__isnull=False)
    ids = list(buyers.values_list("pk", flat=True))
    if len(ids) < 20:
        return {"fitted": False, "customers": len(ids), "reason": "fewer than 20 customers with orders"}
    sample = ids if len(ids) <= sample_size else random.Random(seed).sample(ids, sample_size)
    customers = [summarize(contact, now) for contact in Contact.objects.filter(pk__in=sample).only(
        "order_count", "first_order_at", "last_order_at", "total_spent")]
    model = fit_bgnbd(customers)
    spend = fit_gamma_gamma(customers)
    table = connection.ops.quote_name(Contact._meta.db_table)
    # One UPDATE per contact, sent as a batch (psycopg pipelines executemany): the ORM's
    # bulk_update builds a CASE per column and row, which costs more CPU than the model.
    statement = (f"UPDATE {table} SET predicted_next_order_at = %s, churn_risk = %s, predicted_clv = %s, "
                 "predicted_at = %s WHERE id = %s")
    updated = 0
    for start in range(0, len(ids), BATCH):
        rows = []
        for contact in Contact.objects.filter(pk__in=ids[start:start + BATCH]).only(
                "order_count", "first_order_at", "last_order_at", "total_spent"):
            prediction = predict(contact, model, spend, now)
            rows.append((prediction.next_order_at, prediction.churn_risk, prediction.predicted_clv, now, contact.pk))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(statement, rows)
        updated += len(rows)
    return {"fitted": True, "customers": updated, "bgnbd": vars(model), "gamma_gamma": vars(spend) if spend else None}
