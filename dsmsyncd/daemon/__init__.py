"""The running daemon: lifecycle (startup, main loop, drain, shutdown, signals, reload),
the wiring of sources, target and state, discovery, the scheduler's dataset lanes, the
supervisor of its own tasks, and what /readyz and /status show."""
