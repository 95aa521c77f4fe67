"""Reference values for segflow's experiment statistics (src/stats/), computed with the
libraries the Rust code is checked against. Run it to reproduce the numbers hard-coded in the
unit tests:

    pip install scipy==1.17.1 statsmodels==0.15.0 gbstats==0.8.0
    python3 examples/experiment_stats_reference.py
"""

import hashlib

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

print("== proportions_ztest (src/stats/proportions.rs)")
for x1, n1, x2, n2 in [(120, 1000, 100, 1000), (300, 4500, 45, 500), (1, 50, 9, 60),
                       (5200, 50000, 4800, 50000), (0, 200, 12, 200)]:
    z, p = proportions_ztest([x1, x2], [n1, n2])
    print(f"({x1}, {n1}, {x2}, {n2}, {z:.13f}, {p:.13g}),")

A = [23.5, 0.0, 12.0, 55.1, 0.0, 8.2, 31.0, 0.0, 19.9, 44.4, 7.5, 0.0]
B = [0.0, 5.0, 9.8, 0.0, 11.2, 0.0, 3.3, 14.0, 0.0, 6.1]
print("== ttest_ind(A, B, equal_var=False) (src/stats/welch.rs)")
r = stats.ttest_ind(A, B, equal_var=False)
print(f"t {r.statistic:.13f} df {r.df:.13f} p {r.pvalue:.13f}")


def gb(control, treatment, kind):
    config = FrequentistConfig(alpha=0.05, difference_type=kind)
    res = TwoSidedTTest(control, treatment, config).compute_result()
    return res.expected, res.ci[0], res.ci[1], res.p_value


print("== gbstats TwoSidedTTest (src/stats/lift.rs)")
pc, pt = ProportionStatistic(n=1000, sum=100), ProportionStatistic(n=1000, sum=120)
for kind in ["relative", "absolute"]:
    e, lo, hi, p = gb(pc, pt, kind)
    print(f"proportion {kind}: {e:.13f} [{lo:.13f}, {hi:.13f}] p {p:.13f}")
mc = SampleMeanStatistic(n=len(B), sum=sum(B), sum_squares=sum(x * x for x in B))
mt = SampleMeanStatistic(n=len(A), sum=sum(A), sum_squares=sum(x * x for x in A))
for kind in ["relative", "absolute"]:
    e, lo, hi, p = gb(mc, mt, kind)
    print(f"mean {kind}: {e:.13f} [{lo:.13f}, {hi:.13f}] p {p:.13f}")

print("== chisquare (src/stats/srm.rs)")
for observed, weights in [([1000, 9000], [0.1, 0.9]), ([1080, 8920], [0.1, 0.9]),
                          ([5100, 4900], [0.5, 0.5]), ([220, 2310, 2470], [0.05, 0.475, 0.475]),
                          ([1200, 8800], [0.1, 0.9]), ([1010, 8990], [0.1, 0.9])]:
    total = sum(observed)
    w = np.array(weights) / sum(weights)
    chi, p = stats.chisquare(observed, f_exp=w * total)
    print(f"{observed} {weights}: chi {chi:.13f} p {p:.10g}")

print("== NormalIndPower (src/stats/power.rs)")
h = proportion_effectsize(0.12, 0.10)
print(f"h(0.12, 0.10) = {h:.13f}")
power = NormalIndPower()
for effect, n1, n2 in [(h, 1000, 1000), (h, 4500, 500), (0.2, 300, 120), (0.05, 20000, 20000)]:
    print(f"power({effect:.6f}, {n1}, {n2}) = {power.power(effect, n1, 0.05, ratio=n2 / n1):.13f}")
for n1, n2 in [(1000, 1000), (4500, 500), (300, 120)]:
    mde = power.solve_power(effect_size=None, nobs1=n1, alpha=0.05, power=0.8, ratio=n2 / n1)
    print(f"mde({n1}, {n2}) = {float(np.atleast_1d(mde)[0]):.13f}")

print("== multipletests (src/stats/correction.rs)")
P = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04]
for method in ["holm", "fdr_bh"]:
    print(method, [round(float(x), 12) for x in multipletests(P, method=method)[1]])

print("== bucketing (src/steps/validate/bucket.rs)")
for salt, cid in [("weekly-rfm-2026", "00042"), ("weekly-rfm-2026", "1"), ("other-salt", "1"),
                  ("s", "customer@example.com")]:
    digest = hashlib.sha256(f"{salt}:{cid}".encode()).digest()
    bucket = (int.from_bytes(digest[:8], "big") >> 11) / 2**53
    print(f"({salt!r}, {cid!r}) -> {bucket!r}")

print("== tests/validate_ab.rs: the known case (conversions per segment, 50/50 weights)")
cases = {"A": (100, 1000, 120, 1000), "B": (50, 1000, 75, 1020), "overall": (151, 2010, 197, 2032)}
raw = {}
for label, (xc, nc, xt, nt) in cases.items():
    z, p = proportions_ztest([xt, xc], [nt, nc])
    raw[label] = p
    rel = gb(ProportionStatistic(n=nc, sum=xc), ProportionStatistic(n=nt, sum=xt), "relative")
    ab = gb(ProportionStatistic(n=nc, sum=xc), ProportionStatistic(n=nt, sum=xt), "absolute")
    h = proportion_effectsize(xt / nt, xc / nc)
    pw = power.power(h, nt, 0.05, ratio=nc / nt)
    mde_h = power.solve_power(effect_size=None, nobs1=nt, alpha=0.05, power=0.8, ratio=nc / nt)
    pc = xc / nc
    mde_abs = np.sin(np.arcsin(np.sqrt(pc)) + float(np.atleast_1d(mde_h)[0]) / 2) ** 2 - pc
    srm = stats.chisquare([nc, nt], f_exp=[(nc + nt) / 2] * 2).pvalue
    print(f"{label}: p {p:.13g} rel {rel[0]:.13f} [{rel[1]:.13f}, {rel[2]:.13f}] "
          f"abs {ab[0]:.13f} [{ab[1]:.13f}, {ab[2]:.13f}] power {pw:.13f} mde_abs {mde_abs:.10f} srm_p {srm:.13f}")
print("holm(A, B)", [round(float(x), 13) for x in multipletests([raw["A"], raw["B"]], method="holm")[1]])
print("fdr_bh(A, B)", [round(float(x), 13) for x in multipletests([raw["A"], raw["B"]], method="fdr_bh")[1]])
