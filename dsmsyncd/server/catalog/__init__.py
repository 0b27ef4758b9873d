"""Metadata documents: revisions, sources, datasets (views), configs and users."""
