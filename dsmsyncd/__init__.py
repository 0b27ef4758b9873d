"""dsmsyncd: keeps published datasets in step with dropped data files, through DSMAPI revisions."""

__version__ = "0.1.0"
