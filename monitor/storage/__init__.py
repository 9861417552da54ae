"""Azure Storage access: clients built from settings, table names and entity helpers."""
