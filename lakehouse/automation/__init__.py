"""Automation: partitions, jobs, schedules and sensors that keep the lakehouse up to date."""
