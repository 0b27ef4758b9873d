"""Background work of the server: parsing a source, computing its output schemas,
applying a revision, cleaning up, and resuming what a restart interrupted."""
