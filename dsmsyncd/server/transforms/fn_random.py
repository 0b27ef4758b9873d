"""random_number_normal: a normal sample per row, drawn in SQL (Box-Muller).

The hosted function takes a mean and a *variance*, so the sample is scaled by the
square root of the variance; a negative variance is a cell error.
"""

from __future__ import annotations

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import fail_when, plain_error
from dsmsyncd.server.transforms.typecheck import Call

N = SoqlType.NUMBER


@define("random_number_normal", (N, N), N)
def _random_normal(c: Call) -> tuple[str, str]:
    mean, variance = (f"CAST({a.value} AS DOUBLE)" for a in c.args)
    # 1 - random() lies in (0, 1], so the logarithm is finite.
    gauss = "(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))"
    sample = f"({mean} + sqrt({variance}) * {gauss})"
    value = f"(CASE WHEN {variance} >= 0 THEN CAST({sample} AS {duckdb_type(N)}) END)"
    error = plain_error("out_of_range", "random_number_normal: the variance must not be negative")
    return value, fail_when(f"{variance} < 0", error)
