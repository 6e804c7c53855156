# The EMR Serverless application transformations run on with LAKEHOUSE_COMPUTE=emr-serverless.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "image_uri" {
  description = "Custom image (deploy/emr/Dockerfile) in the stack's ECR repository."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the job runs."
  type        = list(string)
}

variable "security_group_id" {
  description = "Group of the job runs."
  type        = string
}

variable "max_vcpu" {
  description = "Most vCPUs all job runs hold at once (from the transformations' profiles)."
  type        = number
}

variable "max_memory_gb" {
  description = "Most memory (GB) all job runs hold at once."
  type        = number
}

variable "log_group_name" {
  description = "Log group of the job runs (CloudWatch logging, set per run)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of that log group."
  type        = number
}

variable "kms_key_arn" {
  description = "Key of the log group."
  type        = string
}

resource "aws_emrserverless_application" "spark" {
  name          = var.name
  release_label = "emr-7.9.0" # Spark 3.5; the release deploy/emr/Dockerfile builds on
  type          = "spark"
  architecture  = "X86_64"

  image_configuration {
    image_uri = var.image_uri
  }

  maximum_capacity {
    cpu    = "${var.max_vcpu} vCPU"
    memory = "${var.max_memory_gb} GB"
  }

  auto_start_configuration {
    enabled = true
  }

  # Idle workers cost money; a job run starts new ones in a minute or two.
  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = 15
  }

  network_configuration {
    subnet_ids         = var.subnet_ids
    security_group_ids = [var.security_group_id]
  }
}

# Job runs that set monitoringConfiguration.cloudWatchLoggingConfiguration log here (encrypted, with
# retention); the execution role may write only to this group.
resource "aws_cloudwatch_log_group" "jobs" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

output "application_id" {
  description = "LAKEHOUSE_EMR_APPLICATION_ID."
  value       = aws_emrserverless_application.spark.id
}

output "application_arn" {
  description = "ARN of the application."
  value       = aws_emrserverless_application.spark.arn
}

output "log_group_arn" {
  description = "Log group of the job runs."
  value       = aws_cloudwatch_log_group.jobs.arn
}
