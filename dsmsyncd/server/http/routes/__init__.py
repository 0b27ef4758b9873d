"""Route tables, one module per resource of the publishing API."""
