"""Contract tests: the official SDK (socrata-py 1.2.0, from PyPI) against `dsmsyncd serve`.

These run the flows of the SDK's own README and docs unchanged, over HTTPS with
certificate verification on, and check what a reader then gets back over SODA.
The SDK polls once a second, so each flow takes a few seconds by design.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from socrata import Socrata
from socrata.authorization import Authorization

from tests.server.contract.https_server import PASSWORD, USER, ServedHttps

pytestmark = pytest.mark.sdk


def _socrata(server: ServedHttps) -> Socrata:
    auth = Authorization(server.domain, USER, PASSWORD)
    auth.verify = str(server.ca_path)  # requests verifies against our test CA
    return Socrata(auth)


def _read(server: ServedHttps, fourfour: str, **params: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{server.url}/resource/{fourfour}.json",
        params=params,
        auth=(USER, PASSWORD),
        verify=str(server.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    rows = response.json()
    assert isinstance(rows, list)
    return rows


def _csv(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_sdk_create_from_csv_transform_and_apply(https_server: ServedHttps, tmp_path: Path) -> None:
    socrata = _socrata(https_server)
    data = _csv(tmp_path, "temps.csv", "date,celsius,station\n2026-01-01,10,A\n2026-01-02,-5,B\n")
    with data.open("rb") as file:
        revision, output = socrata.create(name="Temperatures", description="daily").csv(file)
    assert output.attributes["error_count"] == 0
    assert output.attributes["completed_at"]
    fourfour = revision.attributes["fourfour"]
    assert revision.attributes["revision_seq"] == 0

    output = (
        output.change_column_metadata("celsius", "display_name")
        .to("Degrees (Celsius)")
        .change_column_transform("celsius")
        .to("to_number(`celsius`)")
        .drop_column("station")
        .add_column(
            "fahrenheit", "Degrees (Fahrenheit)", "(to_number(`celsius`) * (9 / 5)) + 32", "F"
        )
        .run()
    )
    output = output.wait_for_finish()
    assert [c["field_name"] for c in output.attributes["output_columns"]] == [
        "date",
        "celsius",
        "fahrenheit",
    ]

    job = revision.apply(output_schema=output)
    job = job.wait_for_finish()
    assert job.attributes["status"] == "successful"

    rows = _read(https_server, fourfour, **{"$order": "date"})
    assert rows == [
        {"date": "2026-01-01T00:00:00.000", "celsius": "10", "fahrenheit": "50"},
        {"date": "2026-01-02T00:00:00.000", "celsius": "-5", "fahrenheit": "23"},
    ]
    view = socrata.views.lookup(fourfour)
    assert view.attributes["name"] == "Temperatures"


def test_sdk_error_count_error_rows_and_errors_csv(
    https_server: ServedHttps, tmp_path: Path
) -> None:
    socrata = _socrata(https_server)
    data = _csv(tmp_path, "counts.csv", "name,count\nalpha,1\nbeta,lots\ngamma,3\n")
    with data.open("rb") as file:
        revision, output = socrata.create(name="Counts").csv(file)
    output = output.change_column_transform("count").to("to_number(`count`)").run()
    output = output.wait_for_finish()
    assert output.any_errors()
    assert output.attributes["error_count"] == 1

    errors = output.schema_errors(offset=0, limit=20)
    assert len(errors) == 1
    assert "error" in errors[0]["count"]

    csv_response = output.schema_errors_csv()
    assert csv_response.status_code == 200
    assert "Unable to convert" in csv_response.text

    job = revision.apply(output_schema=output).wait_for_finish()
    assert job.attributes["status"] == "successful"
    rows = _read(https_server, revision.attributes["fourfour"], **{"$order": "name"})
    assert [r["name"] for r in rows] == ["alpha", "gamma"]  # the error row is left out


def test_sdk_build_config_then_using_config_runs_transform_each_upload(
    https_server: ServedHttps, tmp_path: Path
) -> None:
    socrata = _socrata(https_server)
    first = _csv(
        tmp_path,
        "permits-1.csv",
        "permit,street_number,street_name\nP1,12,Main Street\nP2,7,Harbor Road\n",
    )
    with first.open("rb") as file:
        revision, output = socrata.create(name="Permits").csv(file)
    output = (
        output.add_column("address", "Address", "`street_number` || ' ' || `street_name`")
        .drop_column("street_number")
        .drop_column("street_name")
        .run()
        .wait_for_finish()
    )
    revision.apply(output_schema=output).wait_for_finish()
    fourfour = revision.attributes["fourfour"]

    config_name = f"permits-{uuid.uuid4().hex[:8]}"
    config = output.build_config(config_name, "update")
    assert config.attributes["name"] == config_name
    assert config.attributes["data_action"] == "update"

    view = socrata.views.lookup(fourfour)
    for n, street in ((3, "Baker Street"), (4, "Privet Drive")):
        more = _csv(
            tmp_path, f"permits-{n}.csv", f"permit,street_number,street_name\nP{n},{n},{street}\n"
        )
        with more.open("rb") as file:
            rev, job = socrata.using_config(config_name, view).csv(file)
        job = job.wait_for_finish()
        assert job.attributes["status"] == "successful"
        assert rev.attributes["action"]["type"] == "update"

    rows = _read(https_server, fourfour, **{"$order": "permit"})
    assert rows == [
        {"permit": "P1", "address": "12 Main Street"},
        {"permit": "P2", "address": "7 Harbor Road"},
        {"permit": "P3", "address": "3 Baker Street"},
        {"permit": "P4", "address": "4 Privet Drive"},
    ]


def test_sdk_metadata_only_revision_changes_name(https_server: ServedHttps, tmp_path: Path) -> None:
    socrata = _socrata(https_server)
    data = _csv(tmp_path, "m.csv", "a\n1\n")
    with data.open("rb") as file:
        revision, output = socrata.create(name="Before").csv(file)
    revision.apply(output_schema=output).wait_for_finish()
    fourfour = revision.attributes["fourfour"]

    view = socrata.views.lookup(fourfour)
    meta = view.revisions.create_update_revision(
        metadata={"name": "After", "metadata": {"lol": "cats"}}
    )
    assert meta.attributes["revision_seq"] == 1
    assert meta.attributes["metadata"]["metadata"]["lol"] == "cats"
    job = meta.apply().wait_for_finish()
    assert job.attributes["status"] == "successful"
    assert socrata.views.lookup(fourfour).attributes["name"] == "After"


def test_sdk_row_id_then_replace_and_upsert(https_server: ServedHttps, tmp_path: Path) -> None:
    socrata = _socrata(https_server)
    data = _csv(tmp_path, "ids.csv", "id,value\n1,one\n2,two\n")
    with data.open("rb") as file:
        revision, output = socrata.create(name="Keyed").csv(file)
    assert output.validate_row_id("id")
    output = output.set_row_id("id").wait_for_finish()
    revision.apply(output_schema=output).wait_for_finish()
    fourfour = revision.attributes["fourfour"]

    view = socrata.views.lookup(fourfour)
    update = view.revisions.create_update_revision()
    changed = _csv(tmp_path, "ids-2.csv", "id,value\n2,TWO\n3,three\n")
    with changed.open("rb") as file:
        source = update.create_upload("ids-2.csv").csv(file)
    out = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
    update.apply(output_schema=out).wait_for_finish()
    assert _read(https_server, fourfour, **{"$order": "id"}) == [
        {"id": "1", "value": "one"},
        {"id": "2", "value": "TWO"},
        {"id": "3", "value": "three"},
    ]

    replace = view.revisions.create_replace_revision()
    only = _csv(tmp_path, "ids-3.csv", "id,value\n9,nine\n")
    with only.open("rb") as file:
        source = replace.create_upload("ids-3.csv").csv(file)
    out = source.get_latest_input_schema().get_latest_output_schema().wait_for_finish()
    job = replace.apply(output_schema=out).wait_for_finish()
    assert job.attributes["status"] == "successful"
    assert _read(https_server, fourfour) == [{"id": "9", "value": "nine"}]
