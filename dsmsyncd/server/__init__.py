"""The local DSMAPI-compatible server (`dsmsyncd serve`).

A wing of its own: it imports nothing from the daemon side, and the daemon imports
nothing from it. Only the CLI and the tests start it.
"""
