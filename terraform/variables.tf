# Per-environment inputs (dev.tfvars, prod.tfvars).
variable "region" {
  description = "AWS region of every resource (LAKEHOUSE_AWS_REGION)."
  type        = string
}

variable "environment" {
  description = "Environment name: suffix of the default bucket, database and job names (LAKEHOUSE_ENVIRONMENT_NAME)."
  type        = string
  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", var.environment))
    error_message = "1-32 lowercase letters, digits and '-', starting and ending with a letter or digit (as lakehouse/settings.py requires)."
  }
}

variable "bucket_names" {
  description = "Bucket name per layer (bronze, silver, gold, artifacts, landing) where the default lakehouse-<layer>-<environment> is taken."
  type        = map(string)
  default     = {}
}

variable "landing_prefix" {
  description = "Key prefix under the landing bucket where files land (LAKEHOUSE_LANDING = s3://<landing bucket>/<prefix>)."
  type        = string
  default     = "incoming"
}

variable "vpc_id" {
  description = "The existing VPC the services, database and Spark jobs run in."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two, in different AZs) of that VPC, with a route to the AWS APIs (NAT or VPC endpoints)."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate of the webserver's internal HTTPS load balancer."
  type        = string
}

variable "webserver_client_security_group_ids" {
  description = "Security groups (e.g. a VPN or bastion) allowed to reach the webserver's load balancer on 443."
  type        = list(string)
  default     = []
}

variable "image_tag" {
  description = "Tag of the lakehouse and lakehouse-emr images in the stack's ECR repositories (deploy/README.md)."
  type        = string
}

variable "compute" {
  description = "Where transformations run by default (LAKEHOUSE_COMPUTE): local, glue or emr-serverless."
  type        = string
  default     = "glue"
  validation {
    condition     = contains(["local", "glue", "emr-serverless"], var.compute)
    error_message = "One of local, glue, emr-serverless."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the Dagster instance database."
  type        = string
  default     = "db.t4g.small"
}

variable "db_multi_az" {
  description = "Standby in a second AZ (prod)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log groups."
  type        = number
  default     = 365
}

variable "logs_retention_days" {
  description = "Days S3 access logs and ALB logs are kept in the logs bucket."
  type        = number
  default     = 365
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version is kept in the data buckets."
  type        = number
  default     = 30
}

variable "pipes_expiry_days" {
  description = "Days Pipes context and message objects (artifacts bucket, pipes/) are kept."
  type        = number
  default     = 3
}

variable "service_sizes" {
  description = "Fargate CPU units and memory (MiB) of each Dagster process's task."
  type        = map(object({ cpu = number, memory = number }))
  default = {
    webserver   = { cpu = 1024, memory = 2048 }
    daemon      = { cpu = 512, memory = 1024 }
    code_server = { cpu = 1024, memory = 4096 }
    run         = { cpu = 2048, memory = 8192 }
  }
}

variable "source_database" {
  description = "The operational PostgreSQL the database sources read (terraform/README.md, docs/aws.md); null: no database sources, nothing added."
  type = object({
    host                 = string
    port                 = optional(number, 5432)
    database             = string
    username             = string
    password_secret_arn  = string
    password_secret_key  = optional(string, "password")
    password_kms_key_arn = optional(string)
    sslmode              = optional(string, "require")
    security_group_id    = optional(string)
    cidr_blocks          = optional(list(string), [])
  })
  default = null
}

# Written by `lakehouse infra export` (lakehouse.auto.tfvars.json): what the code declares.
variable "lakehouse" {
  description = "The code's layers, naming rules, resource profiles and transformations (generated; do not edit by hand)."
  type = object({
    layers          = list(string)
    bucket_layers   = list(string)
    bucket_name     = string
    database_name   = string
    glue_job_name   = string
    profiles        = map(object({ glue_worker_type = string, glue_workers = number, emr_vcpu = number, emr_memory_gb = number }))
    transformations = map(object({ layer = string, engine = string, profile = string }))
  })
}
