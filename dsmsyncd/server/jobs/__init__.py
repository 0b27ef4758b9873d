"""Background work of the server: parsing a source, applying a revision, cleaning up,
and resuming what a restart interrupted."""
