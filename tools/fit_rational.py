#!/usr/bin/python3
"""tools/fit_rational.py - the two rational fits behind GELU (core/tensor/tensor_internal.h
sm__erff, core/tensor/ops/gelu.c gelu_slope), made again and checked.

    /usr/bin/python3 tools/fit_rational.py [erf|slope]    (needs numpy and scipy: Debian's
                                                          python3-numpy python3-scipy)

An odd function f on [-C, C] is fitted as x*P(x^2)/Q(x^2) with Q(0) = 1, minimising the largest
absolute error over ~6000 points (half uniform, half Chebyshev-spaced): for a bound d, finding P
and Q with |x*P - f*Q| <= d*Q and Q >= 0.05 (on u = x^2/C^2) is a linear program; d is found by
bisection. The result is printed as C literals, then the error of the float evaluation with FMAs
(each Horner step rounded once, as the compiled code does) is measured on a dense grid against
libm in double. Dev-time only: nothing in the build runs it.
    erf:   f = erf(x),                          C = 3.925, P degree 6, Q degree 4
    slope: f = Phi(x) + x*phi(x) - 1/2 (GELU'), C = 5.9,   P degree 7, Q degree 5
"""
import math
import sys

import numpy as np
from scipy.optimize import linprog

FITS = {
    "erf": (math.erf, 3.925, 7, 5),
    "slope": (lambda v: 0.5 * math.erf(v / math.sqrt(2)) +
              v * math.exp(-v * v / 2) / math.sqrt(2 * math.pi), 5.9, 8, 6),
}


def fit(f, C, NP, NQ):
    t = np.linspace(0, np.pi, 3000)
    x = np.unique(np.concatenate([C * (1 - np.cos(t)) / 2, np.linspace(0, C, 3000)]))[1:]
    fx = np.array([f(v) for v in x])
    u = (x / C) ** 2
    XP = x[:, None] * u[:, None] ** np.arange(NP)
    UQ = u[:, None] ** np.arange(1, NQ)
    FQ = fx[:, None] * UQ

    def solve(d):
        A = np.vstack([np.hstack([XP, -(FQ + d * UQ)]), np.hstack([-XP, FQ - d * UQ]),
                       np.hstack([np.zeros((len(x), NP)), -UQ])])
        b = np.concatenate([fx + d, d - fx, np.full(len(x), 0.95)])
        r = linprog(np.zeros(NP + NQ - 1), A_ub=A, b_ub=b,
                    bounds=[(None, None)] * (NP + NQ - 1), method="highs")
        return r.x if r.status == 0 else None

    lo, hi, best = 0.0, 1e-4, None
    for _ in range(40):
        mid = (lo + hi) / 2
        s = solve(mid)
        if s is not None:
            hi, best = mid, s
        else:
            lo = mid
    p = best[:NP] * C ** (-2.0 * np.arange(NP))
    q = np.concatenate([[1.0], best[NP:]]) * C ** (-2.0 * np.arange(NQ))
    return p, q


def float_eval(x, p, q, C):
    """x*P/Q in float with FMAs, x clamped to [-C, C]."""
    f32 = np.float32
    p32, q32 = p.astype(f32), q.astype(f32)
    c = np.clip(x, f32(-C), f32(C))
    s = (c.astype(np.float64) ** 2).astype(f32)
    P = np.full_like(s, p32[-1])
    for k in p32[-2::-1]:
        P = (P.astype(np.float64) * s + np.float64(k)).astype(f32)
    Q = np.full_like(s, q32[-1])
    for k in q32[-2::-1]:
        Q = (Q.astype(np.float64) * s + np.float64(k)).astype(f32)
    return ((c.astype(np.float64) * P).astype(f32).astype(np.float64) / Q).astype(f32)


def main():
    names = sys.argv[1:] or list(FITS)
    for name in names:
        f, C, NP, NQ = FITS[name]
        p, q = fit(f, C, NP, NQ)
        print(f"{name}: C = {C}")
        print("  P (x^2 ascending):", ", ".join(f"{v:.9e}f" for v in p))
        print("  Q (x^2 ascending):", ", ".join(f"{v:.9e}f" for v in q))
        x = np.linspace(-(C + 2), C + 2, 1_600_001).astype(np.float32)
        ref = np.array([f(float(v)) for v in x])
        if name == "erf":
            ref = np.clip(ref, -1, 1)
        err = np.abs(float_eval(x, p, q, C).astype(np.float64) - ref)
        print(f"  float evaluation: max abs error {err.max():.3g} at x = {x[err.argmax()]:g}, "
              f"mean {err.mean():.3g}")


if __name__ == "__main__":
    main()
