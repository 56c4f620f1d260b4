"""Benchmark: fitting the buy-till-you-die models (growth_pipeline.lib.models.btyd) to 100,000 customers.

    .venv/bin/python benchmarks/btyd_fit.py --customers 100000

Simulates ``--customers`` customers of the BG/NBD process (``--weeks`` of observation each) with known
parameters and Gamma-Gamma spends for the repeat buyers, then times ``BetaGeoModel().fit`` and
``GammaGammaModel().fit`` (median of ``--repeats`` runs) and prints the recovered parameters next to the truth.
As a same-run reference it also times one plain numpy evaluation of the BG/NBD log-likelihood over the
un-aggregated rows (every gamma / beta function per row), the cost of one likelihood call without the module's
aggregation. ``--daily`` rounds purchase times down to whole days, as ``rfm_summary`` sees them, which leaves far
fewer distinct ``(x, t_x, T)`` rows to fit. Target (2 cores): each fit under 10 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy.special import betaln, gammaln

from growth_pipeline.lib.models.btyd import (
    BetaGeoModel,
    BetaGeoParams,
    GammaGammaModel,
    bgnbd_log_likelihood,
    simulate_bgnbd,
)


def plain_log_likelihood(p: BetaGeoParams, x, tx, T) -> np.ndarray:
    """The BG/NBD log-likelihood written out per row, no aggregation and no per-distinct-x caching."""
    a1 = gammaln(p.r + x) - gammaln(p.r) + p.r * np.log(p.alpha)
    a2 = betaln(p.a, p.b + x) - betaln(p.a, p.b) - (p.r + x) * np.log(p.alpha + T)
    a3 = np.where(
        x > 0,
        betaln(p.a + 1, p.b + np.maximum(x - 1, 0)) - betaln(p.a, p.b) - (p.r + x) * np.log(p.alpha + tx),
        -np.inf,
    )
    return a1 + np.logaddexp(a2, a3)


def timed(fn, repeats: int):
    secs, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        secs.append(time.perf_counter() - t0)
    return statistics.median(secs), min(secs), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--weeks", type=float, default=39.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--daily", action="store_true", help="round purchase times down to whole days")
    ap.add_argument("--r", type=float, default=0.25)
    ap.add_argument("--alpha", type=float, default=4.0)
    ap.add_argument("--a", type=float, default=0.8)
    ap.add_argument("--b", type=float, default=2.5)
    ap.add_argument("--p", type=float, default=6.0)
    ap.add_argument("--q", type=float, default=4.0)
    ap.add_argument("--v", type=float, default=15.0)
    args = ap.parse_args()
    truth = BetaGeoParams(args.r, args.alpha, args.a, args.b)

    t0 = time.perf_counter()
    x, tx, T = simulate_bgnbd(args.customers, truth.r, truth.alpha, truth.a, truth.b, args.weeks, seed=args.seed)
    if args.daily:
        tx = np.floor(tx * 7) / 7
    rng = np.random.default_rng(args.seed + 1)
    nu = rng.gamma(args.q, 1 / args.v, x.size)  # spends ~ Gamma(p, rate nu), nu ~ Gamma(q, rate v)
    xs = np.maximum(x, 1)
    m = np.where(x > 0, rng.gamma(args.p * xs, 1 / nu) / xs, np.nan)
    distinct = np.unique(np.stack([x, tx, T], axis=1), axis=0).shape[0]
    print(
        f"simulated {args.customers:,} customers over {args.weeks:g} weeks in {time.perf_counter() - t0:.2f} s: "
        f"{int((x > 0).sum()):,} repeat buyers, {distinct:,} distinct (x, t_x, T) rows"
        f"{' (times in whole days)' if args.daily else ''}, max x {int(x.max())}"
    )

    plain, plain_min, ll = timed(lambda: plain_log_likelihood(truth, x, tx, T), args.repeats)
    module, module_min, ll2 = timed(lambda: bgnbd_log_likelihood(truth, x, tx, T), args.repeats)
    assert np.isclose(ll.sum(), ll2.sum(), rtol=1e-10), (ll.sum(), ll2.sum())
    bg_s, bg_min, bg = timed(lambda: BetaGeoModel().fit(x, tx, T), args.repeats)
    gg_s, gg_min, gg = timed(lambda: GammaGammaModel().fit(x, m), args.repeats)

    print(f"\n{f'step (median of {args.repeats})':<56} {'seconds':>8} {'min':>8}")
    for name, s, lo in [
        (f"plain log-likelihood, {args.customers:,} rows (reference)", plain, plain_min),
        ("bgnbd_log_likelihood, same rows (per-distinct-x terms)", module, module_min),
        (f"BetaGeoModel().fit ({'converged' if bg.converged else 'NOT converged'})", bg_s, bg_min),
        (f"GammaGammaModel().fit, {gg.n_customers:,} repeat buyers", gg_s, gg_min),
    ]:
        print(f"{name:<56} {s:8.3f} {lo:8.3f}")

    print(f"\n{'parameter':<12} {'truth':>10} {'fitted':>10} {'rel. error':>11}")
    fitted = bg.params.to_dict() | gg.params.to_dict()
    for name, true in (truth.to_dict() | {"p": args.p, "q": args.q, "v": args.v}).items():
        print(f"{name:<12} {true:10.4f} {fitted[name]:10.4f} {fitted[name] / true - 1:+11.2%}")
    pop_true, pop = args.p * args.v / (args.q - 1), gg.population_mean()
    print(f"{'mean spend':<12} {pop_true:10.4f} {pop:10.4f} {pop / pop_true - 1:+11.2%}")
    worst = max(bg_s, gg_s)
    print(
        f"\ntarget: each fit of {args.customers:,} customers under 10 s: {worst:.2f} s "
        f"({'met' if worst < 10 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
