"""From a stable file to a published revision: which mapping takes it (routing), then one
SyncJob per file: open a revision, upload, check, apply; resume after a crash; guards and
outcomes; the startup sweep of files a crash left unmoved."""
