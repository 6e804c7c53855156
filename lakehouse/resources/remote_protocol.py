"""What a remote compute and the remote driver agree on: the Pipes extras and the message cadence."""

SETTINGS_EXTRA = "lakehouse_settings"  # Pipes extra: the LAKEHOUSE_* variables the job runs with
PARTITIONS_EXTRA = "lakehouse_partition_keys"  # Pipes extra: the step's daily partition keys (as the local step's)
# Messages (logs, the materialization, check results) reach the Dagster run this often while the
# job runs: the S3 message writer uploads a chunk, and the reader polls, per interval.
MESSAGE_INTERVAL_SECONDS = 5.0
# Where the remote driver script lives in the artifacts bucket (Glue: the job's ScriptLocation;
# EMR Serverless: the job runs' entry point).
DRIVER_KEY = "driver/driver.py"
