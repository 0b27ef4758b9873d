"""The function table: name → signatures, plus the names the local server cannot run.

Builder modules (``fn_*.py``) register into it with :func:`define`; the compiler and
:func:`dsmsyncd.server.transforms.functions.catalogue` only read it.
"""

from __future__ import annotations

from collections.abc import Callable

from dsmsyncd.server.transforms.typecheck import Builder, Signature, Spec

REGISTRY: dict[str, list[Signature]] = {}
NOTES: dict[str, str] = {}

# Documented functions that need something the local server does not have.
NOT_AVAILABLE: dict[str, str] = {
    "geocode": "a geocoding service on the internet",
    "geocode_esri": "an Esri geocoding service on the internet",
    "http_get": "internet access",
    "region_code": "another dataset's region polygons",
    "region_code_label": "another dataset's region polygons",
    "state_boundary": "the Socrata boundary datasets",
    "county_boundary": "the Socrata boundary datasets",
    "domain_categories": "a Socrata domain's configuration",
    "domain_licenses": "a Socrata domain's configuration",
    "parse_address": "a US address parsing service",
    "parse_city": "a US address parsing service",
    "parse_state": "a US address parsing service",
    "parse_zip": "a US address parsing service",
    "parse_point": "a US address parsing and geocoding service",
}

# Internal operator and cast names map onto documented functions.
ALIASES: dict[str, str] = {
    "cast$text": "to_text",
    "cast$number": "to_number",
    "cast$json": "to_json",
    "cast$checkbox": "to_boolean",
    "cast$boolean": "to_boolean",
    "cast$point": "to_point",
    "cast$multipoint": "to_multipoint",
    "cast$line": "to_line",
    "cast$multiline": "to_multiline",
    "cast$polygon": "to_polygon",
    "cast$multipolygon": "to_multipolygon",
    "cast$url": "to_url",
    "cast$date": "to_fixed_timestamp",
    "cast$fixed_timestamp": "to_fixed_timestamp",
    "cast$calendar_date": "to_floating_timestamp",
    "cast$floating_timestamp": "to_floating_timestamp",
    "cast_to_text": "to_text",
    "cast_to_number": "to_number",
    "cast_to_checkbox": "to_boolean",
    "cast_to_date": "to_fixed_timestamp",
    "cast_to_calendar_date": "to_floating_timestamp",
    "cast_to_point": "to_point",
    "cast_to_multipoint": "to_multipoint",
    "cast_to_line": "to_line",
    "cast_to_multiline": "to_multiline",
    "cast_to_polygon": "to_polygon",
    "cast_to_multipolygon": "to_multipolygon",
    "to_checkbox": "to_checkbox",
    "cast$location": "to_location",
    "cast_to_location": "to_location",
}


def define(
    name: str,
    params: tuple[Spec, ...],
    result: Spec,
    *,
    repeat: int = 0,
    lazy: bool = False,
    strict: bool = True,
    optional: int = 0,
    note: str | None = None,
) -> Callable[[Builder], Builder]:
    """Register one signature of `name` with the decorated builder."""

    def register(builder: Builder) -> Builder:
        sig = Signature(params, result, builder, repeat, lazy, strict, optional)
        REGISTRY.setdefault(name, []).append(sig)
        if note:
            NOTES[name] = note
        return builder

    return register
