"""Sources: the landing zone and sample data for it."""
