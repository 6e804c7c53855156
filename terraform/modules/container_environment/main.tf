# Each Dagster process's container environment and secrets, from deploy/environment.json's list.
# No provider, no resources: tests evaluate it with plain `terraform apply` on the real file.
variable "processes" {
  description = "Dagster processes of deploy/environment.json (webserver, daemon, code_server, run)."
  type        = list(string)
}

variable "variables" {
  description = "deploy/environment.json's variables: name, secret, processes, optional."
  type = list(object({
    name      = string
    secret    = bool
    processes = list(string)
    optional  = optional(bool, false)
  }))
}

variable "values" {
  description = "Value of every non-secret variable, by name."
  type        = map(string)
}

variable "secret_sources" {
  description = "Secrets Manager valueFrom of every secret variable, by name."
  type        = map(string)
}

locals {
  # The listed variables the stack gives a value (or a secret source). An optional one (a feature the
  # stack may leave out, e.g. the database sources' LAKEHOUSE_POSTGRES_*) is left out without one.
  given   = [for v in var.variables : v if contains(keys(v.secret ? var.secret_sources : var.values), v.name)]
  missing = [for v in var.variables : v.name if !v.optional && !contains(local.given[*].name, v.name)]
}

output "environment" {
  description = "ECS `environment` entries by process."
  value = {
    for p in var.processes : p => [
      for v in local.given : { name = v.name, value = var.values[v.name] }
      if !v.secret && contains(v.processes, p)
    ]
  }
  precondition {
    condition     = length(local.missing) == 0
    error_message = "deploy/environment.json lists variables the stack gives no value: ${join(", ", local.missing)} (add them to environment_values or secret_sources in terraform/main.tf)."
  }
}

output "secrets" {
  description = "ECS `secrets` entries by process."
  value = {
    for p in var.processes : p => [
      for v in local.given : { name = v.name, valueFrom = var.secret_sources[v.name] }
      if v.secret && contains(v.processes, p)
    ]
  }
  precondition {
    condition     = length(local.missing) == 0
    error_message = "deploy/environment.json lists secret variables without a source: ${join(", ", local.missing)}."
  }
}
