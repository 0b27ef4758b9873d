"""What operators see of the daemon: structured logs, Prometheus metrics, the admin HTTP app,
and the notify protocol of systemd (readiness, stopping, watchdog)."""
