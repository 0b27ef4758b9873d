"""Parsing web-shaped text: email_parse, uri_parse (to JSON with members) and xml_pluck.

email_parse and uri_parse are one regex each in SQL (uri_parse uses RFC 3986's
appendix B regex, which splits anything, so 'not a url' is all path, as documented).
xml_pluck runs Python's ElementTree as a UDF: its XPath subset is what the local
server supports (absolute or ``//`` paths, ``[n]`` and ``[@a='v']`` predicates, a
final ``text()`` or ``@attr``); the path is checked when the transform compiles.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import NULL, sql_text
from dsmsyncd.server.transforms.typecheck import Call
from dsmsyncd.server.transforms.udf import CellError, udf, udf_call

T, J = SoqlType.TEXT, SoqlType.JSON

_EMAIL = sql_text(r"^\s*([^@\s]+)@([^@\s]+?)\s*$")
_URI = sql_text(r"^(([^:/?#]+):)?(//([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?")
_HOST = sql_text(r"^(?:[^@]*@)?(\[[^\]]*\]|[^:]*)")
_TLD = sql_text(r"\.([A-Za-z][A-Za-z0-9-]*)$")


def _tld(host: str) -> str:
    return f"NULLIF(upper(regexp_extract({host}, {_TLD}, 1)), '')"


@define("email_parse", (T,), J)
def _email_parse(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    ok = f"regexp_matches({x}, {_EMAIL})"
    name = f"(CASE WHEN {ok} THEN regexp_extract({x}, {_EMAIL}, 1) END)"
    host = f"(CASE WHEN {ok} THEN regexp_extract({x}, {_EMAIL}, 2) END)"
    parsed = f"json_object('name', {name}, 'host', {host}, 'tld', {_tld(host)})"
    return f"(CASE WHEN {x} IS NOT NULL THEN CAST({parsed} AS VARCHAR) END)", NULL


@define("uri_parse", (T,), J)
def _uri_parse(c: Call) -> tuple[str, str]:
    x = c.args[0].value

    def group(n: int) -> str:
        return f"NULLIF(regexp_extract({x}, {_URI}, {n}), '')"

    host = f"NULLIF(regexp_extract({group(4)}, {_HOST}, 1), '')"
    fields = {"scheme": group(2), "host": host, "path": group(5), "tld": _tld(host)}
    fields["query"] = group(7)
    pairs = ", ".join(f"'{k}', {v}" for k, v in fields.items())
    return f"(CASE WHEN {x} IS NOT NULL THEN CAST(json_object({pairs}) AS VARCHAR) END)", NULL


def _member(name: str) -> None:
    @define(f"op$.{name}", (J,), T)
    def build(c: Call) -> tuple[str, str]:
        return f"json_extract_string({c.args[0].value}, '$.{name}')", NULL


for _name in ("name", "host", "tld", "scheme", "path", "query"):
    _member(_name)


_STEP = re.compile(r"^(\*|[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)(\[(\d+|@[\w-]+(='[^']*')?)\])*$")


def element_path(xpath: str) -> tuple[str, str]:
    """An XPath as (ElementTree path from the root's parent, final selector); ValueError."""
    path, selector = xpath.strip(), ""
    last = re.search(r"/(text\(\)|@[\w-]+)$", path)
    if last:
        selector, path = last.group(1), path[: last.start()]
    if path.startswith("//"):
        steps, prefix = path[2:].split("/"), ".//"
    elif path.startswith("/"):
        steps, prefix = path[1:].split("/"), "./"
    else:
        raise ValueError("the path must start with / or //")
    if not all(_STEP.match(step) for step in steps):
        raise ValueError("only element names, [n] and [@attr='value'] steps are supported")
    return prefix + "/".join(steps), selector


@udf("xml_pluck", "VARCHAR", "VARCHAR", failure="invalid_xml")
def _xml_pluck_udf(document: str, xpath: str) -> str | None:
    try:
        root = ET.fromstring(document)
    except ET.ParseError as error:
        raise CellError("invalid_xml", f"Unable to parse the XML: {error}") from None
    path, selector = element_path(xpath)
    holder = ET.Element("document")  # so that the path's first step can match the root
    holder.append(root)
    found = holder.find(path)
    if found is None:
        return None
    if selector == "text()":
        return (found.text or "").strip()
    if selector.startswith("@"):
        return found.get(selector[1:])
    return ET.tostring(found, encoding="unicode").strip()


@define(
    "xml_pluck",
    (T, T),
    T,
    note="an XPath subset: /a/b or //b steps, [n], [@k='v'], a final text() or @attr",
)
def _xml_pluck(c: Call) -> tuple[str, str]:
    xpath = c.literal_text(1, "XPath")
    try:
        element_path(xpath)
    except ValueError as error:
        raise c.fail(f"xml_pluck: cannot use the XPath {xpath!r}: {error}", 1, "syntax") from None
    return udf_call("xml_pluck", [c.args[0].value, sql_text(xpath)], T)
