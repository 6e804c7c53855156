"""Input/output: the table store and the IO manager in front of it."""
