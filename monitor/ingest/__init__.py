"""Ingestion: Model Data Collector (or custom JSONL) blobs -> joined, sampled, claimed records."""
