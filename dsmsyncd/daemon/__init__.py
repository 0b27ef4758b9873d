"""The running daemon: lifecycle, wiring of sources, target and state, the scheduler's
dataset lanes, routing of files to mappings, and what /status shows."""
