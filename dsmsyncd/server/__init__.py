"""The local DSMAPI-compatible server (`dsmsyncd serve`).

A wing of its own: it imports nothing from the daemon side, and the daemon imports
nothing from it. Only the CLI and the tests start it.

Inside the wing, packages are layers in the order a request travels: request →
catalog → storage. A module imports only from its own layer or a layer below it,
so no import points up and there are no circles:

| layer (top first)         | what lives there                                         |
|---------------------------|----------------------------------------------------------|
| ``main.py``, ``app.py``   | start and stop; the aiohttp app: middlewares, every      |
|                           | route table and startup hook, registered in one place    |
| ``http/``                 | routes, representations (envelopes, links), URL paths,   |
|                           | request bodies, who is calling (auth), may they (access) |
| ``jobs/``                 | background work: parse, materialize, apply, cleanup,     |
|                           | resume at start, the output-schema signal                |
| ``state.py``              | ``ServerState``: the two stores, and the work running in |
|                           | the background, filed under what it works on             |
| ``catalog/``              | metadata documents (SQLite): revisions, sources, views,  |
|                           | configs, users; their rules, no HTTP                     |
| ``storage/``              | rows (DuckDB): ingest, output tables, apply, dataset     |
|                           | reads, SoQL reads; uploads on disk                       |
| ``transforms/``           | the expression language: lexer → parser → typecheck →    |
|                           | compiler → SQL                                           |
| shared base               | ``errors.py`` (the JSON error), ``fields.py`` (typed     |
|                           | fields of JSON objects), ``ids.py``, ``json_depth.py``,  |
|                           | ``soql_types.py`` (one table of SoQL types),             |
|                           | ``pause_points.py`` (test freeze points),                |
|                           | ``credentials.py`` (where ``serve`` reads secrets)       |

The shared base imports nothing of the server but itself; every layer may use it.
"""
