"""Import configs as the wire shows them (digest §1.7): the stored document and its links."""

from __future__ import annotations

from typing import Any

from dsmsyncd.server.catalog.metastore import Doc, public
from dsmsyncd.server.http.bodies import envelope
from dsmsyncd.server.http.paths import API, config_path
from dsmsyncd.server.storage.parse_options import wire_parse_options


def config_links(name: str) -> dict[str, str]:
    one = config_path(name)
    return {
        "show": one,
        "update": one,
        "delete": one,
        "list": f"{API}/config",
        "create_revision": f"{one}/revision/{{fourfour}}",
    }


def config_envelope(config: Doc) -> dict[str, Any]:
    resource = public(config)
    if isinstance(config.get("parse_options"), dict):
        resource["parse_options"] = wire_parse_options(config["parse_options"])
    return envelope(resource, config_links(config["name"]))
