"""Gold: reporting tables, overwritten whole or one partition at a time."""
