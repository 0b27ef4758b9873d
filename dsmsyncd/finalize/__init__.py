"""After a job: archive, delete, keep or quarantine the file (a folder's or a bucket's),
with a machine-readable report for a quarantined one."""
