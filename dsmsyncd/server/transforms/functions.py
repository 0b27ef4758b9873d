"""The documented function catalogue and what the local server implements of it.

Importing this module registers every builder module. :func:`catalogue` feeds the
README's function table, so its notes say what differs from Socrata's behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsmsyncd.server.transforms import (  # noqa: F401  (register builders)
    fn_core,
    fn_geo,
    fn_geometry,
    fn_location,
    fn_projection,
    fn_random,
    fn_text,
    fn_time,
    fn_web,
)
from dsmsyncd.server.transforms.registry import NOT_AVAILABLE, NOTES, REGISTRY

# Every function name documented in the digest (§5.3) plus the spec's cast_to_* family.
DOCUMENTED = [
    "abs",
    "round",
    "random_number_between",
    "random_number_normal",
    "case",
    "coalesce",
    "greatest",
    "least",
    "error",
    "forgive",
    "to_text",
    "to_number",
    "to_boolean",
    "to_checkbox",
    "to_fixed_timestamp",
    "to_floating_timestamp",
    "to_point",
    "to_line",
    "to_polygon",
    "to_multipoint",
    "to_multiline",
    "to_multipolygon",
    "to_location",
    "to_url",
    "to_json",
    "cast_to_text",
    "cast_to_number",
    "cast_to_checkbox",
    "cast_to_date",
    "cast_to_calendar_date",
    "cast_to_point",
    "cast_to_multipoint",
    "cast_to_line",
    "cast_to_multiline",
    "cast_to_polygon",
    "cast_to_multipolygon",
    "cast_to_location",
    "make_point",
    "make_location",
    "make_url",
    "from_polyline",
    "lower",
    "upper",
    "title_case",
    "length",
    "grapheme_length",
    "trim",
    "trim_leading",
    "trim_trailing",
    "left_pad",
    "right_pad",
    "slice",
    "replace",
    "replace_first",
    "regex_replace",
    "regex_capture",
    "regex_named_capture",
    "split_select",
    "starts_with",
    "contains",
    "is_empty",
    "hash",
    "url_encode",
    "url_decode",
    "email_parse",
    "uri_parse",
    "url_url",
    "url_description",
    "parse_address",
    "parse_city",
    "parse_state",
    "parse_zip",
    "parse_point",
    "json_pluck",
    "json_pluck_text",
    "json_pluck_number",
    "json_pluck_boolean",
    "json_array_contains",
    "xml_pluck",
    "http_get",
    "domain_categories",
    "domain_licenses",
    "date_extract_y",
    "date_extract_m",
    "date_extract_d",
    "date_extract_hh",
    "date_extract_mm",
    "date_extract_ss",
    "date_extract_dow",
    "date_extract_woy",
    "floating_timestamp_year",
    "floating_timestamp_month",
    "floating_timestamp_day",
    "floating_timestamp_hour",
    "floating_timestamp_minute",
    "floating_timestamp_second",
    "floating_timestamp_day_of_week",
    "floating_timestamp_week_of_year",
    "date_trunc_y",
    "date_trunc_ym",
    "date_trunc_ymd",
    "datetime_add_d",
    "datetime_add_hh",
    "datetime_add_mm",
    "datetime_add_ss",
    "datetime_diff",
    "source_created_at",
    "geocode",
    "geocode_esri",
    "state_boundary",
    "county_boundary",
    "is_within",
    "ensure_within",
    "region_code",
    "region_code_label",
    "reproject",
    "reproject_to_wgs84",
    "set_projection",
    "centroid",
    "polylabel",
    "simplify",
    "simplify_preserve_topology",
    "validate_geometry",
    "repair_geometry",
    "haversine_distance",
    "point_latitude",
    "point_longitude",
    "location_address",
    "location_city",
    "location_state",
    "location_zip",
    "location_point",
    "location_to_point",
]


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    implemented: bool
    note: str


def all_names() -> list[str]:
    return sorted(set(DOCUMENTED) | {n for n in REGISTRY if n.isidentifier()})


def catalogue() -> list[FunctionInfo]:
    """Every documented function with whether the local server implements it, and why not."""
    from dsmsyncd.server.transforms.registry import ALIASES

    infos: list[FunctionInfo] = []
    for name in all_names():
        target = ALIASES.get(name, name)
        if target in REGISTRY:
            note = NOTES.get(target, "")
            if target != name:
                note = f"same as {target}" + (f"; {note}" if note else "")
            infos.append(FunctionInfo(name, True, note))
        elif name in NOT_AVAILABLE:
            infos.append(FunctionInfo(name, False, f"needs {NOT_AVAILABLE[name]}"))
        else:
            infos.append(FunctionInfo(name, False, "not implemented yet"))
    return infos
