"""What operators see of the daemon: structured logs, Prometheus metrics, the admin HTTP app."""
