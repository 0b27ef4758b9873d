"""dsmsyncd: keeps published datasets in step with dropped data files, through DSMAPI revisions.

Two wings that never import each other: the daemon, and the local DSMAPI-compatible
server (``server/``, started only by the ``serve`` and ``demo`` commands). The daemon
wing is a stack of layers in the order data flows; a module imports only from its own
layer or the ones below it, never from one above (``tests/project/test_import_graph.py``)::

    cli        argparse, dispatch, exit codes; run, push, check-config, status, demo
    daemon     lifecycle, signals, reload, discovery, the scheduler's lanes, /status
    pipeline   routing a file to its mapping, the SyncJob, resume, outcomes, the sweep
    finalize   archive / delete / keep / quarantine, and the quarantine report
    sources    drop folders and buckets behind the Source protocol; stability
    dsmapi     the async client of the publishing API
    state      the state store: every file and every step of its job
    observe    logs, metrics, the admin HTTP app, sd_notify
    config     the base: the typed configuration, secrets and their redaction
    blob.py    the base: a file's bytes, read by range (the Blob protocol)

``observe`` sits below ``state`` because it reads nothing of it: the daemon hands the
admin app its status (``daemon/status.py``).
"""

__version__ = "0.1.0"
