"""Checks made before a file may touch its dataset: pure functions, no I/O.

Three mistakes are cheap to catch locally and expensive to catch late:

* **An empty file.** 0 bytes is no CSV at all (not even a header row): refused before
  a revision is opened, rather than uploaded for the server to refuse.

* **Schema drift.** An import config's transforms name input columns; a file whose
  header lost one of them would make every row an error. Comparing the header with
  the names the transforms reference refuses the file before a revision is opened.
* **Destructive replace.** A replace truncates the dataset. An empty or truncated
  export (a failed upstream job) would silently wipe the published rows; the guard
  refuses a replace that would drop more than the mapping allows.

The field names follow the digest (§1.3): lower-case, trimmed, punctuation and
spaces turned into ``_``; the expression scan is a small tokenizer that finds column
references (digest §5.1), not the server's parser.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable

_NON_WORD = re.compile(r"[\W_]+")
_IDENT = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
# Bare words that are never input columns: operators, literals and SQL-ish keywords.
_KEYWORDS = frozenset(
    {
        *("and", "or", "not", "is", "null", "true", "false", "between", "in", "like", "as"),
        *("case", "when", "then", "else", "end", "distinct"),
    }
)


def field_name(header: str) -> str:
    """``" Case Number "`` → ``case_number``; an empty header becomes ``_``.

    A name that would start with a digit gets a leading ``_`` (``2020 count`` →
    ``_2020_count``), as DSMAPI field names cannot start with one.
    """
    name = _NON_WORD.sub("_", header.strip().lower()).strip("_") or "_"
    return "_" + name if name[0].isdigit() else name


def header_field_names(
    head: bytes,
    separator: str = ",",
    quote: str | None = '"',
    header_count: int = 1,
    column_header: int = 1,
    encoding: str | None = None,
) -> list[str]:
    """The DSMAPI field names of a file's header row, read from its first bytes.

    ``head`` is the start of the file (the pipeline reads 64 KiB); the parse options
    are those of the import config (digest §1.2.1). Returns ``[]`` when the file has
    no header row (``header_count`` 0) or the head holds no complete header row, so
    the caller can skip the comparison rather than guess.
    """
    if header_count < 1 or column_header < 1 or column_header > header_count:
        return []
    text = _complete_lines(_decode(head, encoding))
    rows = _rows(text, separator or ",", quote or None, column_header)
    if len(rows) < column_header:
        return []
    return [field_name(cell) for cell in rows[column_header - 1]]


def _decode(head: bytes, encoding: str | None) -> str:
    if encoding:
        try:
            name = codecs.lookup(encoding).name
        except LookupError:
            name = "utf-8"
        # A byte-order mark is not part of the first header; the head may end inside a
        # multi-byte character: replace, never fail.
        name = "utf-8-sig" if name == "utf-8" else name
        return head.decode(name, errors="replace")
    try:
        return head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # only the cut at the end of the head
            return head[: exc.start].decode("utf-8-sig", errors="replace")
        return head.decode("latin-1")


def _complete_lines(text: str) -> str:
    """Drop a last line that the head may have cut short; a single line is kept whole."""
    end = max(text.rfind("\n"), text.rfind("\r"))
    return text[: end + 1] if end >= 0 else text


def _rows(text: str, separator: str, quote: str | None, wanted: int) -> list[list[str]]:
    if len(separator) != 1:  # csv needs one character; a multi-character one splits plainly
        return [line.split(separator) for line in text.splitlines()[:wanted]]
    reader = csv.reader(
        io.StringIO(text),
        delimiter=separator,
        quotechar=quote or '"',
        quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
    )
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= wanted:
                break
    except csv.Error:
        pass  # a quote left open by the cut at the end of the head
    return rows


def referenced_columns(transform_expr: str) -> set[str]:
    """Input column names a transform expression refers to.

    Backtick-quoted names always count; a bare identifier counts unless it is a
    function name (followed by ``(``), a keyword or literal, a member after ``.``, or a
    type after ``::``. String literals are skipped whole.
    """
    names: set[str] = set()
    text = transform_expr
    i, n = 0, len(text)
    previous = ""  # the last significant token, to recognise `.member` and `::type`
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'\"":
            i = _skip_string(text, i)
            previous = "literal"
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            names.add(text[i + 1 : end])
            i, previous = end + 1, "name"
            continue
        number = _NUMBER.match(text, i) if previous != "." else None
        if number and (ch.isdigit() or ch == "."):
            i, previous = number.end(), "literal"
            continue
        ident = _IDENT.match(text, i)
        if ident:
            word = ident.group(0)
            i = ident.end()
            rest = text[i:].lstrip()
            is_call = rest.startswith("(")
            if not (is_call or previous in (".", "::") or word.lower() in _KEYWORDS):
                names.add(word)
            previous = "name"
            continue
        previous = "::" if text.startswith("::", i) else ch
        i += 2 if previous == "::" else 1
    return names


def _skip_string(text: str, start: int) -> int:
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == quote:
            if text[i + 1 : i + 2] == quote:  # '' inside '...' is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    return i


def missing_columns(config_columns: Iterable[str], header_names: Iterable[str]) -> list[str]:
    """Referenced columns the file's header lacks, sorted (empty when all are there)."""
    present = set(header_names)
    return sorted(set(config_columns) - present)


def empty_file_message(relative_path: str, dataset: str) -> str:
    """Why a 0-byte file is refused before any revision is opened, and what to do.

    An empty file has no header row, so no dataset can take it, whatever the action:
    ``allow_empty_replace`` is about a file with a header row and no data rows, which
    still goes through ``replace_guard``.
    """
    return (
        f"{relative_path} is empty (0 bytes): with no header row it is not a CSV that "
        f"dataset {dataset} can take (often what a failed export leaves). Fix the export "
        "and drop the file again; to empty a dataset on purpose, drop a file with only its "
        "header row to a mapping with action = 'replace' and allow_empty_replace = true"
    )


def replace_guard(
    current_rows: int, new_rows: int, max_row_drop: float, allow_empty: bool
) -> str | None:
    """Why a replace must not run, or None when it may.

    ``max_row_drop`` is the largest fraction of the current rows a replace may remove
    (0.5 = the file must keep at least half); 1.0 disables the guard. An empty file
    is refused (unless ``allow_empty``) even when the fraction would allow it, because
    an empty export is the classic upstream failure.
    """
    if current_rows <= 0 or new_rows >= current_rows:
        return None
    if new_rows <= 0:
        if allow_empty:
            return None
        return (
            f"refusing to replace the dataset's {current_rows} rows with a file that has "
            "no usable rows; if emptying the dataset is intended, set "
            "allow_empty_replace = true on the mapping"
        )
    drop = (current_rows - new_rows) / current_rows
    if drop > max_row_drop:
        return (
            f"refusing to replace {current_rows} rows with {new_rows}: that drops "
            f"{drop:.0%} of the rows, more than the mapping's max_row_drop of "
            f"{max_row_drop:.0%}; check the file, or raise max_row_drop on the mapping"
        )
    return None
