"""One SyncJob per file: open a revision, upload, check, apply; resume after a crash;
guards and outcomes."""
