"""The reliability suite uses the daemon wing's fixtures as they are: the robot's client
and a state store (``tests/daemon/conftest.py``), a site, plain HTTP reads and a daemon
process (``tests/daemon/e2e/conftest.py``); the server is ``tests/conftest.py``'s."""

from tests.daemon.conftest import client, store  # noqa: F401
from tests.daemon.e2e.conftest import daemon_process, http, site  # noqa: F401
