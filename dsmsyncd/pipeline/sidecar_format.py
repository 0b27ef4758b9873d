"""Metadata sidecars: which files are sidecars, and what a sidecar may say.

A sidecar is ``NAME.meta.json`` or ``NAME.meta.toml`` beside a data file ``NAME``
(``permits.csv.meta.json`` beside ``permits.csv``): the full data file name, then the
suffix, so that ``permits.csv`` and ``permits.xlsx`` in one folder each have their own.
It sets the dataset's metadata in the revision that publishes ``NAME`` (or, alone, in a
metadata-only revision). Its keys are the operator's words, translated here into the
revision's ``metadata`` object (DSMAPI digest §1.1.1); every mistake names the key and
the problem, because the file's author fixes it by reading the quarantine report.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

__all__ = [
    "MAX_SIDECAR_BYTES",
    "SIDECAR_SUFFIXES",
    "SidecarError",
    "data_path_of",
    "parse_sidecar",
    "sidecar_paths",
]

SIDECAR_SUFFIXES = (".meta.json", ".meta.toml")
# Metadata, not data: a sidecar bigger than this is a mistake (a data file misnamed).
MAX_SIDECAR_BYTES = 256 * 1024
_MAX_TEXT = 4000
_URL = re.compile(r"^https?://[^/\s]+\S*$")


class SidecarError(ValueError):
    """A sidecar that cannot be used: ``key`` is the offending key (or ``""`` for the
    file as a whole), ``problem`` what is wrong with it and how to fix it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


def data_path_of(relative_path: str) -> str | None:
    """The data file a sidecar describes (``a/permits.csv`` for ``a/permits.csv.meta.json``),
    or None when ``relative_path`` is not a sidecar."""
    for suffix in SIDECAR_SUFFIXES:
        if relative_path.endswith(suffix) and len(relative_path) > len(suffix):
            stem = relative_path.removesuffix(suffix)
            if not stem.endswith("/"):
                return stem
    return None


def sidecar_paths(relative_path: str) -> tuple[str, ...]:
    """Where the sidecars of data file ``relative_path`` would be, JSON first."""
    return tuple(relative_path + suffix for suffix in SIDECAR_SUFFIXES)


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SidecarError(key, f"expected a string, found {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise SidecarError(key, f"at most {_MAX_TEXT} characters, found {len(value)}")
    return value


def _name(key: str, value: Any) -> str:
    text = _text(key, value)
    if not text.strip():
        raise SidecarError(key, "must not be empty (a dataset needs a name)")
    return text


def _tags(key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise SidecarError(key, 'expected a list of strings, like ["permits", "housing"]')
    return [_text(key, tag) for tag in value]


def _license(key: str, value: Any) -> dict[str, str]:
    # Hosted sites take a license by name as free text (digest §1.1.1, ``license``
    # object); the site's own list decides whether it shows as a known license.
    return {"name": _name(key, value)}


def _link(key: str, value: Any) -> str:
    text = _text(key, value)
    if not _URL.match(text):
        raise SidecarError(key, "expected an http(s) URL like https://example.gov/about")
    return text


def _custom(key: str, value: Any) -> dict[str, Any]:
    """``{"Section": {"Field": "value"}}``: the site's custom metadata fields."""
    if not isinstance(value, dict):
        raise SidecarError(key, 'expected a table of sections, like {"Ownership": {...}}')
    for section, fields in value.items():
        if not isinstance(fields, dict):
            raise SidecarError(f"{key}.{section}", "expected a table of field = value")
        for field, item in fields.items():
            if not isinstance(item, str | int | float | bool):
                raise SidecarError(
                    f"{key}.{section}.{field}",
                    f"expected a string, number or boolean, found {type(item).__name__}",
                )
    return {"custom_fields": value}


# sidecar key → (revision metadata key, check-and-convert)
_KEYS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "name": ("name", _name),
    "description": ("description", _text),
    "category": ("category", _text),
    "tags": ("tags", _tags),
    "license": ("license", _license),
    "attribution": ("attribution", _text),
    "attribution_link": ("attributionLink", _link),
    "custom": ("metadata", _custom),
}


def _document(relative_path: str, raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_SIDECAR_BYTES:
        raise SidecarError("", f"a sidecar holds at most {MAX_SIDECAR_BYTES} bytes of metadata")
    try:
        text = raw.decode("utf-8")
        if relative_path.endswith(".toml"):
            document: Any = tomllib.loads(text)
        else:
            document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise SidecarError("", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SidecarError("", f"not valid {relative_path.rsplit('.', 1)[-1]}: {exc}") from None
    if not isinstance(document, dict):
        raise SidecarError("", "expected an object of metadata keys")
    return document


def parse_sidecar(relative_path: str, raw: bytes) -> dict[str, Any]:
    """The revision ``metadata`` a sidecar's bytes say; SidecarError names the first
    bad key (unknown keys are refused: a misspelt ``descripton`` would else be lost)."""
    document = _document(relative_path, raw)
    metadata: dict[str, Any] = {}
    for key, value in document.items():
        known = _KEYS.get(key)
        if known is None:
            raise SidecarError(key, f"unknown key; known keys: {', '.join(_KEYS)}")
        target, check = known
        metadata[target] = check(key, value)
    if not metadata:
        raise SidecarError("", f"no metadata in it; known keys: {', '.join(_KEYS)}")
    return metadata
