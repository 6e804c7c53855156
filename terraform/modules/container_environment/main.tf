# Each Dagster process's container environment and secrets, from deploy/environment.json's list.
# No provider, no resources: tests evaluate it with plain `terraform apply` on the real file.
variable "processes" {
  description = "Dagster processes of deploy/environment.json (webserver, daemon, code_server, run)."
  type        = list(string)
}

variable "variables" {
  description = "deploy/environment.json's variables: name, secret, processes."
  type = list(object({
    name      = string
    secret    = bool
    processes = list(string)
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
  missing = concat(
    [for v in var.variables : v.name if !v.secret && !contains(keys(var.values), v.name)],
    [for v in var.variables : v.name if v.secret && !contains(keys(var.secret_sources), v.name)],
  )
}

output "environment" {
  description = "ECS `environment` entries by process."
  value = {
    for p in var.processes : p => [
      for v in var.variables : { name = v.name, value = var.values[v.name] }
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
      for v in var.variables : { name = v.name, valueFrom = var.secret_sources[v.name] }
      if v.secret && contains(v.processes, p)
    ]
  }
  precondition {
    condition     = length(local.missing) == 0
    error_message = "deploy/environment.json lists secret variables without a source: ${join(", ", local.missing)}."
  }
}
