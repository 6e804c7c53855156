# The operational PostgreSQL database the database sources read (lakehouse/sources/postgres.py):
# the run tasks' LAKEHOUSE_POSTGRES_* values and password secret, what the task execution role may
# read, and the run tasks' egress to the database. Null: no database sources, every output empty.
# No provider, no resources: tests evaluate it with plain `terraform apply`.
variable "database" {
  description = "The source database (the root variable source_database), or null."
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
  validation {
    condition     = var.database == null ? true : can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", var.database.host)) && var.database.port >= 1 && var.database.port <= 65535 && var.database.database != "" && var.database.username != ""
    error_message = "host: a DNS name or IPv4 address (no scheme, no port); port 1-65535; database and username not empty."
  }
  validation {
    # The full ARN, with the random suffix Secrets Manager appends: IAM grants on exactly that ARN.
    condition     = var.database == null ? true : can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", var.database.password_secret_arn)) && can(regex("^[A-Za-z0-9_.-]*$", var.database.password_secret_key))
    error_message = "password_secret_arn: the secret's full ARN (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>); password_secret_key: a JSON key, or \"\" when the secret string is the password."
  }
  validation {
    condition     = var.database == null ? true : var.database.password_kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.database.password_kms_key_arn))
    error_message = "password_kms_key_arn: the ARN of the customer managed key encrypting the secret (arn:<partition>:kms:<region>:<account>:key/<id>), or null for aws/secretsmanager."
  }
  validation {
    # Encrypted or nothing: the rows and the password cross the network. verify-ca and verify-full
    # also need the server's root certificate in the image (~/.postgresql/root.crt).
    condition     = var.database == null ? true : contains(["require", "verify-ca", "verify-full"], var.database.sslmode)
    error_message = "sslmode: require, verify-ca or verify-full."
  }
  validation {
    condition     = var.database == null ? true : (var.database.security_group_id != null || length(var.database.cidr_blocks) > 0) && alltrue([for c in var.database.cidr_blocks : can(cidrnetmask(c))])
    error_message = "Name the database's security group (security_group_id) or its IPv4 CIDR blocks (cidr_blocks), which the run tasks may reach on port."
  }
}

locals {
  database = var.database == null ? [] : [var.database]
}

output "environment_values" {
  description = "The LAKEHOUSE_POSTGRES_* values of deploy/environment.json, by name (empty without a database)."
  value = merge([for d in local.database : {
    LAKEHOUSE_POSTGRES_HOST     = d.host
    LAKEHOUSE_POSTGRES_PORT     = tostring(d.port)
    LAKEHOUSE_POSTGRES_DATABASE = d.database
    LAKEHOUSE_POSTGRES_USER     = d.username
    LAKEHOUSE_POSTGRES_SSLMODE  = d.sslmode
  }]...)
}

# The password as an ECS secret, like DAGSTER_PG_PASSWORD: the execution role reads the secret when
# a run task starts and the container gets the value as LAKEHOUSE_POSTGRES_PASSWORD. Not
# LAKEHOUSE_POSTGRES_PASSWORD_SECRET: that would have the code read Secrets Manager with the run
# task's role, which then could read the secret at any time, and every other secret the code names.
output "secret_sources" {
  description = "Secrets Manager valueFrom of LAKEHOUSE_POSTGRES_PASSWORD (empty without a database)."
  value = merge([for d in local.database : {
    LAKEHOUSE_POSTGRES_PASSWORD = d.password_secret_key == "" ? d.password_secret_arn : "${d.password_secret_arn}:${d.password_secret_key}::"
  }]...)
}

output "secret_arns" {
  description = "The password secret, for the task execution role (empty without a database)."
  value       = [for d in local.database : d.password_secret_arn]
}

output "kms_key_arns" {
  description = "The secret's customer managed key, for the task execution role (empty without one)."
  value       = [for d in local.database : d.password_kms_key_arn if d.password_kms_key_arn != null]
}

output "egress" {
  description = "Where the run tasks reach the database: by key, port and a security group or an IPv4 CIDR block."
  value = merge([for d in local.database : merge(
    { for g in compact([d.security_group_id]) : g => { port = d.port, security_group_id = g, cidr_ipv4 = null } },
    { for c in d.cidr_blocks : c => { port = d.port, security_group_id = null, cidr_ipv4 = c } },
  )]...)
}
