"""Rows on disk: uploads, ingest by format, the DuckDB row store and SoQL reads."""
