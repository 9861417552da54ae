"""Judge calibration against a golden set of human scores (docs/calibration.md): pure agreement
statistics in `agreement`, the golden set in `golden`, runs and their history in `runs`."""
