"""Score and traffic drift against a baseline (docs/drift.md): pure statistics in `stats` and
`compute`, window rows read through `series`, the timer step in `service`, the read side in `query`."""
