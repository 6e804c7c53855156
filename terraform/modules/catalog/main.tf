# Glue Data Catalog databases (one per layer) and the one generic Glue job every transformation runs as.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "database_names" {
  description = "Glue database name by layer."
  type        = map(string)
}

variable "bucket_names" {
  description = "Bucket name by role (the layers' and artifacts)."
  type        = map(string)
}

variable "job_name" {
  description = "Name of the Glue job (LAKEHOUSE_GLUE_JOB_NAME)."
  type        = string
}

variable "job_role_arn" {
  description = "Role of the Glue job."
  type        = string
}

variable "kms_key_arn" {
  description = "Key of the job's S3 output, logs and bookmarks."
  type        = string
}

variable "max_concurrent_runs" {
  description = "Job runs at once: every transformation that may run on Glue."
  type        = number
}

variable "log_group_prefix" {
  description = "Log group prefix of Glue jobs."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the job's log groups."
  type        = number
}

variable "default_profile_workers" {
  description = "Workers of the default profile (each run sets its own)."
  type        = number
}

variable "default_profile_type" {
  description = "Worker type of the default profile."
  type        = string
}

resource "aws_glue_catalog_database" "layer" {
  for_each     = var.database_names
  name         = each.value
  description  = "lakehouse ${each.key} tables"
  location_uri = "s3://${var.bucket_names[each.key]}/${each.key}"
}

resource "aws_glue_security_configuration" "job" {
  name = "${var.name}-job"
  encryption_configuration {
    s3_encryption {
      s3_encryption_mode = "SSE-KMS"
      kms_key_arn        = var.kms_key_arn
    }
    cloudwatch_encryption {
      cloudwatch_encryption_mode = "SSE-KMS"
      kms_key_arn                = var.kms_key_arn
    }
    job_bookmarks_encryption {
      job_bookmarks_encryption_mode = "CSE-KMS"
      kms_key_arn                   = var.kms_key_arn
    }
  }
}

# The job's log groups, created here (encrypted, with retention) rather than by Glue on first run.
# With a security configuration Glue writes to /aws-glue/jobs/<configuration>-role/<role>/..., and
# continuous logging (below) to the groups named here.
resource "aws_cloudwatch_log_group" "job" {
  for_each          = toset(["output", "error", "logs-v2"])
  name              = "${var.log_group_prefix}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_glue_job" "transform" {
  name                   = var.job_name
  description            = "Runs one lakehouse transformation per job run (--lakehouse-asset); see docs/remote-compute.md"
  role_arn               = var.job_role_arn
  glue_version           = "5.1"
  security_configuration = aws_glue_security_configuration.job.name
  # Each run asks for its transformation's profile (WorkerType, NumberOfWorkers); these are the default's.
  worker_type       = var.default_profile_type
  number_of_workers = var.default_profile_workers
  timeout           = 360 # minutes: bounds a hung job; Dagster's own run limit is 6 h too
  command {
    name            = "glueetl"
    python_version  = "3"
    script_location = "s3://${var.bucket_names["artifacts"]}/driver/driver.py"
  }
  execution_property {
    max_concurrent_runs = var.max_concurrent_runs
  }
  default_arguments = {
    "--datalake-formats"                 = "iceberg"
    "--enable-continuous-cloudwatch-log" = "true"
    "--continuous-log-logGroup"          = aws_cloudwatch_log_group.job["logs-v2"].name
    "--enable-metrics"                   = "true"
    "--job-language"                     = "python"
  }
}

output "database_names" {
  description = "Glue database by layer."
  value       = { for k, d in aws_glue_catalog_database.layer : k => d.name }
}

output "job_name" {
  description = "The Glue job."
  value       = aws_glue_job.transform.name
}
