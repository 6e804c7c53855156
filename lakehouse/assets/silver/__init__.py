"""Silver: validated, deduplicated tables merged on their primary key, plus their quarantines."""
