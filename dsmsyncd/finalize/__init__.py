"""After a job: archive, delete, keep or quarantine the file, with a report."""
