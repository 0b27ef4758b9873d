from tests.daemon.conftest import client, store  # noqa: F401
from tests.daemon.e2e.conftest import daemon_process, http, site  # noqa: F401
