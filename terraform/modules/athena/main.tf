# The Athena workgroup dbt-athena runs the dbt models in (LAKEHOUSE_ATHENA_WORK_GROUP): its settings
# override the client's, so every query's results land, encrypted with the stack's key, under the one
# prefix the run task may write (LAKEHOUSE_ATHENA_STAGING_DIR).
variable "name" {
  description = "Name of the workgroup."
  type        = string
}

variable "results_bucket_name" {
  description = "Bucket of the query results (the artifacts bucket)."
  type        = string
}

variable "results_prefix" {
  description = "Key prefix of the query results in that bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "Key the query results are encrypted with (SSE-KMS)."
  type        = string
}

locals {
  output_location = "s3://${var.results_bucket_name}/${var.results_prefix}/"
}

resource "aws_athena_workgroup" "dbt" {
  name        = var.name
  description = "dbt-athena: the lakehouse's dbt models (Gold) over the Silver tables"
  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    engine_version {
      selected_engine_version = "Athena engine version 3" # pinned, not AUTO: the engine dbt-athena's Iceberg SQL is written for
    }
    result_configuration {
      output_location = local.output_location
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = var.kms_key_arn
      }
    }
  }
}

output "work_group_name" {
  description = "The workgroup (LAKEHOUSE_ATHENA_WORK_GROUP)."
  value       = aws_athena_workgroup.dbt.name
}

output "work_group_arn" {
  description = "The workgroup's ARN (the run task role runs queries in it)."
  value       = aws_athena_workgroup.dbt.arn
}

output "output_location" {
  description = "Where the workgroup writes query results (LAKEHOUSE_ATHENA_STAGING_DIR)."
  value       = local.output_location
}
