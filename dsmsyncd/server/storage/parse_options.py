"""Parse options (digest §1.2.1) and field names derived from headers (digest §1.3).

Kept apart from the parser so that sources and import configs can validate and
default options without pulling in DuckDB. :meth:`ParseOptions.from_json` is the one
rule for what parse options may hold, for a source and for an import config alike.

Two forms of the same options, and this module is the one place that turns one into
the other:

* **stored** (:meth:`ParseOptions.to_stored`): what the client asked for. A separator
  nobody chose stays ``null``, so it can still follow the file: a ``.tsv`` name or a
  TSV content type, which arrives with the bytes, long after the source was created.
  Storing ``","`` at creation would decide for a file not yet seen.
* **wire** (:meth:`ParseOptions.to_json`): what a client reads, every key filled as a
  hosted site fills it (``","``, or ``"\t"`` for TSV).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

# Accepted spellings of `encoding` → (DuckDB encoding, Python codec for the head).
ENCODINGS: dict[str, tuple[str, str]] = {
    "utf8": ("utf-8", "utf-8-sig"),
    "utf-8": ("utf-8", "utf-8-sig"),
    # DuckDB has no windows-1252; latin-1 differs only in 0x80-0x9F (curly quotes, €).
    "latin1": ("latin-1", "latin-1"),
    "latin-1": ("latin-1", "latin-1"),
    "iso-8859-1": ("latin-1", "latin-1"),
    "iso8859-1": ("latin-1", "latin-1"),
    "windows-1252": ("latin-1", "latin-1"),
    "cp1252": ("latin-1", "latin-1"),
    "utf16": ("utf-16", "utf-16"),
    "utf-16": ("utf-16", "utf-16"),
}

_TSV_CONTENT_TYPES = ("text/tab-separated-values", "text/tsv")
_TSV_NAMES = (".tsv", ".tab")


class InvalidParseOption(ValueError):
    """A parse option that cannot be used; ``key`` names it, the message says why."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ParseOptions:
    """The eight parse options of digest §1.2.1, with the server's defaults.

    ``column_separator`` may stay ``None`` until the file is known: then it is ``"\\t"``
    for a TSV content type or ``.tsv`` name, else sniffed from the first line (``","``
    unless that line has tabs and no commas). ``to_json`` always reports a separator.

    ``sheet_name`` is this server's own option (the digest names none): the sheet of
    an XLS/XLSX workbook to read, by name; ``None`` reads the first sheet. It is only
    shown once set, so the wire keeps the eight keys of the digest otherwise.
    """

    header_count: int = 1
    column_header: int = 1
    encoding: str | None = None
    column_separator: str | None = None
    quote_char: str = '"'
    parse_source: bool = True
    trim_whitespace: bool = True
    remove_empty_rows: bool = True
    sheet_name: str | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any] | None) -> ParseOptions:
        """Options from a request body; missing keys take defaults, unknown keys are ignored.

        Raises :class:`InvalidParseOption` naming the offending key.
        """
        body = body or {}
        opts = cls(
            header_count=_int_key(body, "header_count", 1, minimum=0),
            column_header=_int_key(body, "column_header", 1, minimum=1),
            encoding=_opt_str_key(body, "encoding"),
            column_separator=_opt_str_key(body, "column_separator"),
            quote_char=_opt_str_key(body, "quote_char") or '"',
            parse_source=_bool_key(body, "parse_source", True),
            trim_whitespace=_bool_key(body, "trim_whitespace", True),
            remove_empty_rows=_bool_key(body, "remove_empty_rows", True),
            sheet_name=_opt_str_key(body, "sheet_name") or None,
        )
        if opts.header_count > 0 and opts.column_header > opts.header_count:
            raise InvalidParseOption(
                "column_header",
                f"column_header ({opts.column_header}) must be between 1 and "
                f"header_count ({opts.header_count})",
            )
        if opts.column_separator is not None and len(opts.column_separator) != 1:
            raise InvalidParseOption(
                "column_separator", "column_separator must be a single character"
            )
        if len(opts.quote_char) != 1:
            raise InvalidParseOption("quote_char", "quote_char must be a single character")
        if opts.quote_char == (opts.column_separator or ","):
            # An unchosen separator is "," unless the file turns out to be TSV.
            raise InvalidParseOption(
                "quote_char", "quote_char and column_separator must be different characters"
            )
        for key in ("column_separator", "quote_char"):
            if getattr(opts, key) in ("\r", "\n"):
                raise InvalidParseOption(
                    key, "column_separator and quote_char cannot be a line break"
                )
        if opts.encoding is not None and opts.encoding.lower() not in ENCODINGS:
            raise InvalidParseOption(
                "encoding", f"encoding must be null (guess) or one of {sorted(ENCODINGS)}"
            )
        return opts

    def to_stored(self) -> dict[str, Any]:
        """The options as a source or config keeps them: an unchosen separator is null."""
        stored: dict[str, Any] = {
            "header_count": self.header_count,
            "column_header": self.column_header,
            "encoding": self.encoding,
            "column_separator": self.column_separator,
            "quote_char": self.quote_char,
            "parse_source": self.parse_source,
            "trim_whitespace": self.trim_whitespace,
            "remove_empty_rows": self.remove_empty_rows,
        }
        if self.sheet_name is not None:
            stored["sheet_name"] = self.sheet_name
        return stored

    def to_json(
        self, *, content_type: str | None = None, filename: str | None = None
    ) -> dict[str, Any]:
        """The options as a client reads them: the separator the file will be read with,
        as far as its content type and name tell (``","`` when they tell nothing)."""
        wire = self.resolved(content_type=content_type, filename=filename).to_stored()
        wire["column_separator"] = wire["column_separator"] or ","
        return wire

    def resolved(self, *, content_type: str | None, filename: str | None) -> ParseOptions:
        """These options with the separator fixed by content type or file name, if open."""
        if self.column_separator is not None:
            return self
        ctype = (content_type or "").split(";")[0].strip().lower()
        name = (filename or "").lower()
        if ctype in _TSV_CONTENT_TYPES or name.endswith(_TSV_NAMES):
            return replace(self, column_separator="\t")
        return self


def wire_parse_options(
    stored: Mapping[str, Any], *, content_type: str | None = None, filename: str | None = None
) -> dict[str, Any]:
    """Stored options (of a source, with its content type and file name, or of a config)
    as the wire shows them. Documents stored before ``to_stored`` existed read the same."""
    return ParseOptions.from_json(stored).to_json(content_type=content_type, filename=filename)


def field_names(headers: list[str]) -> list[str]:
    """API field names for headers (digest §1.3): ``"Case Number"`` → ``case_number``.

    Empty headers become ``_``; a repeated name gets ``__1``, ``__2``… (so a second
    empty header is ``__1``); a name starting with a digit gets a leading ``_``.
    """
    names: list[str] = []
    taken: set[str] = set()
    for header in headers:
        base = re.sub(r"_+", "_", re.sub(r"\W", "_", header.strip().lower())).strip("_")
        if not base:
            base = "_"
        elif base[0].isdigit():
            base = "_" + base
        name, n = base, 0
        while name in taken:
            n += 1
            name = f"{base.rstrip('_')}__{n}"
        taken.add(name)
        names.append(name)
    return names


def _int_key(body: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParseOption(
            key, f"{key} must be an integer >= {minimum}, got {json.dumps(value)}"
        )
    return value


def _opt_str_key(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidParseOption(key, f"{key} must be a string or null, got {json.dumps(value)}")


def _bool_key(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidParseOption(key, f"{key} must be true or false, got {json.dumps(value)}")
    return value
