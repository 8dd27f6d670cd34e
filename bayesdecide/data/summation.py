"""Order-independent sums: the same rows give bit-identical cell statistics under any thread count.

A parallel floating-point ``SUM`` adds the rows in whatever order the engine's threads happen to
meet them, and floating-point addition is not associative: the last bits of a sum change from run
to run (about 1e-15 relative), and with them the data fingerprint and every posterior draw.

Here every summed term ``t`` (a value, a square or a cross-product) is rounded to the nearest
multiple of ``q = 2**e`` (ties to even), a power of two fixed by the term's largest magnitude ``M``
over the data (read before the aggregation), and summed as an integer::

    SUM(CAST(t * 2**-e AS BIGINT))          2**61 * q >= M, so |t / q| < 2**62

Integer addition is associative, and the engines sum 64-bit integers exactly (DuckDB into a
128-bit HUGEINT, Spark into DECIMAL(38, 0)), so the sum is the same in any order; the statistic is
that integer times ``q``, rounded once to a double. Each row loses at most ``q / 2`` (at most
``M * 2**-61``): over ``N`` rows at most ``N * M * 2**-61`` and typically about
``sqrt(N) * M * 2**-62`` (for 100 million rows of terms up to ``M``: 4e-11 * M at the very worst,
2e-15 * M typically), well under the rounding error of a plain double sum of the same rows. Terms
whose values are integers (integer columns) are summed as they are when ``N * M < 2**53``: those
sums are exact already.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: Largest magnitude accepted in an outcome or covariate column (see ``check_profile``).
MAX_ABS_VALUE = 1e15
#: Smallest largest-magnitude accepted in a column that is not all zero.
MIN_ABS_VALUE = 1e-100

_EXACT_INTEGER = 2.0**53
_INTEGER_BITS = 61  # |t / q| <= 2**61 * (1 + 2**-50) < 2**63: fits a BIGINT


def _ceil_log2(x: float) -> int:
    """Smallest integer e with 2**e >= x (x > 0)."""
    mantissa, exponent = math.frexp(x)
    return exponent - 1 if mantissa == 0.5 else exponent


def term_exponent(n_rows: int, max_abs: float, *, integer_valued: bool) -> int | None:
    """Exponent ``e`` of the grid ``2**e`` of a summed term, or None when a plain sum is exact.

    None also for terms that validation rejects (non-finite, or beyond the products of the
    magnitude bounds), which are then summed plainly.
    """
    if not math.isfinite(max_abs) or max_abs == 0.0:
        return None
    if integer_valued and n_rows * max_abs < _EXACT_INTEGER:
        return None
    if not MIN_ABS_VALUE**2 <= max_abs <= MAX_ABS_VALUE**2:
        return None
    return _ceil_log2(max_abs) - _INTEGER_BITS


def exponents_for(
    factors: Mapping[str, tuple[int, ...]],
    n_rows: int,
    max_abs: list[float],
    integer_valued: list[bool],
) -> dict[str, int | None]:
    """Grid exponent of every statistic (:func:`term_exponent`), from each numeric column's
    largest magnitude; ``factors`` maps a statistic to the columns it multiplies."""
    out: dict[str, int | None] = {}
    for name, cols in factors.items():
        bound = math.prod(max_abs[c] for c in cols)
        if len(cols) > 1:
            bound *= 1.0 + 2.0**-50  # the product is rounded (up by at most half an ulp)
        integer = all(integer_valued[c] for c in cols)
        out[name] = term_exponent(n_rows, bound, integer_valued=integer)
    return out


def scale_constant(exponent: int) -> str:
    """SQL for the double ``2**-exponent``, written so that both engines parse exactly it."""
    return f"CAST('{2.0**-exponent!r}' AS DOUBLE)"


def from_integer_sum(total: int, exponent: int) -> float:
    """The statistic ``total * 2**exponent`` as a double (one rounding)."""
    return math.ldexp(float(total), exponent)


__all__ = [
    "MAX_ABS_VALUE",
    "MIN_ABS_VALUE",
    "exponents_for",
    "from_integer_sum",
    "scale_constant",
    "term_exponent",
]
