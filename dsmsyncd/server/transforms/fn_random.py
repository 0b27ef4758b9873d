"""random_number_normal: a normal sample per row, drawn in SQL (Box-Muller).

The hosted function takes a mean and a *variance*, so the sample is scaled by the
square root of the variance; a negative variance is a cell error.
"""

from __future__ import annotations

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import fail_when, first_error, plain_error
from dsmsyncd.server.transforms.typecheck import Call

N = SoqlType.NUMBER


@define("random_number_normal", (N, N), N)
def _random_normal(c: Call) -> tuple[str, str]:
    mean, variance = (f"CAST({a.value} AS DOUBLE)" for a in c.args)
    # 1 - random() lies in (0, 1], so the logarithm is finite.
    gauss = "(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"
    sample = f"({mean} + sqrt({variance}) * {gauss})"
    # A double draw, rounded to 15 significant digits as every double result is.
    drawn, too_large = numbers.from_double(sample, "random_number_normal")
    value = f"(CASE WHEN {variance} >= 0 THEN {drawn} END)"
    error = plain_error("out_of_range", "random_number_normal: the variance must not be negative")
    return value, first_error([fail_when(f"{variance} < 0", error), too_large])
