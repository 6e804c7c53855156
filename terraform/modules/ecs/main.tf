# The Dagster deployment on Fargate: one service per long-running process (webserver, daemon, code
# server), the run task definition EcsRunLauncher launches, Cloud Map discovery of the code server.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "region" {
  description = "Region of the log groups."
  type        = string
}

variable "vpc_id" {
  description = "The existing VPC (Cloud Map's private zone)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key of the log groups."
  type        = string
}

variable "log_group_prefix" {
  description = "Prefix of the processes' log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the log groups."
  type        = number
}

variable "image" {
  description = "The lakehouse image (deploy/Dockerfile) from the stack's ECR repository."
  type        = string
}

variable "processes" {
  description = "Dagster processes of deploy/environment.json (webserver, daemon, code_server, run)."
  type        = list(string)
}

variable "environment_variables" {
  description = "deploy/environment.json's variables: name, secret, processes, optional."
  type = list(object({
    name      = string
    secret    = bool
    processes = list(string)
    optional  = optional(bool, false)
  }))
}

variable "environment_values" {
  description = "Value of every non-secret variable, by name."
  type        = map(string)
}

variable "secret_sources" {
  description = "Secrets Manager valueFrom of every secret variable, by name."
  type        = map(string)
}

variable "task_role_arns" {
  description = "Task role by process."
  type        = map(string)
}

variable "execution_role_arn" {
  description = "Task execution role (images, logs, secrets)."
  type        = string
}

variable "security_group_ids" {
  description = "Security group by process."
  type        = map(string)
}

variable "sizes" {
  description = "Fargate cpu and memory by process."
  type        = map(object({ cpu = number, memory = number }))
}

variable "run_task_family" {
  description = "Family of the run task definition (DAGSTER_RUN_TASK_DEFINITION)."
  type        = string
}

variable "code_server_dns_name" {
  description = "Cloud Map name of the code server."
  type        = string
}

variable "service_discovery_zone" {
  description = "Private DNS namespace of the code server."
  type        = string
}

variable "webserver_target_group" {
  description = "Load balancer target group of the webserver."
  type        = string
}

locals {
  # The entrypoint's command per service (deploy/entrypoint.sh).
  commands = {
    webserver   = ["webserver"]
    daemon      = ["daemon"]
    code_server = ["code-server"]
  }
  # Container names; `run` is the name deploy/dagster.yaml gives EcsRunLauncher (container_name).
  container_names = {
    webserver   = "webserver"
    daemon      = "daemon"
    code_server = "code-server"
    run         = "run"
  }
  ports = {
    webserver   = 3000
    code_server = 4000
  }
  services = toset(["webserver", "daemon", "code_server"])
}

module "environment" {
  source         = "../container_environment"
  processes      = var.processes
  variables      = var.environment_variables
  values         = var.environment_values
  secret_sources = var.secret_sources
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "process" {
  for_each          = toset(var.processes)
  name              = "${var.log_group_prefix}/${replace(each.key, "_", "-")}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_task_definition" "process" {
  #checkov:skip=CKV_AWS_336:Dagster writes DAGSTER_HOME/storage and Spark writes /tmp inside the container; Fargate offers no tmpfs
  for_each                 = toset(var.processes)
  family                   = each.key == "run" ? var.run_task_family : "${var.name}-${replace(each.key, "_", "-")}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.sizes[each.key].cpu
  memory                   = var.sizes[each.key].memory
  task_role_arn            = var.task_role_arns[each.key]
  execution_role_arn       = var.execution_role_arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
  # A run task has no command of its own (the launcher gives it) and no health check (its exit counts).
  container_definitions = jsonencode([merge(
    {
      name         = local.container_names[each.key]
      image        = var.image
      essential    = true
      environment  = module.environment.environment[each.key]
      secrets      = module.environment.secrets[each.key]
      portMappings = contains(keys(local.ports), each.key) ? [{ containerPort = local.ports[each.key], protocol = "tcp" }] : []
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.process[each.key].name
          awslogs-region        = var.region
          awslogs-stream-prefix = "dagster"
        }
      }
    },
    [for process in setsubtract([each.key], ["run"]) : {
      command = local.commands[process]
      healthCheck = {
        command     = ["CMD", "python", "/opt/dagster/bin/healthcheck.py", local.container_names[process]]
        interval    = 30
        timeout     = 15
        retries     = 3
        startPeriod = 120
      }
    }]...
  )])
}

resource "aws_service_discovery_private_dns_namespace" "this" {
  name        = var.service_discovery_zone
  description = "Dagster services of ${var.name}"
  vpc         = var.vpc_id
}

resource "aws_service_discovery_service" "code_server" {
  name = var.code_server_dns_name
  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.this.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10 # a replaced code server task is found within seconds
    }
  }
  health_check_custom_config {
    failure_threshold = 1
  }
}

resource "aws_ecs_service" "process" {
  for_each               = local.services
  name                   = replace(each.key, "_", "-")
  cluster                = aws_ecs_cluster.this.id
  task_definition        = aws_ecs_task_definition.process[each.key].arn
  desired_count          = 1
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = false
  propagate_tags         = "SERVICE"
  # Exactly one daemon may run: stop the old task before starting the new one.
  deployment_minimum_healthy_percent = each.key == "daemon" ? 0 : 100
  deployment_maximum_percent         = each.key == "daemon" ? 100 : 200

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [var.security_group_ids[each.key]]
    assign_public_ip = false
  }

  dynamic "load_balancer" {
    for_each = each.key == "webserver" ? [var.webserver_target_group] : []
    content {
      target_group_arn = load_balancer.value
      container_name   = local.container_names["webserver"]
      container_port   = local.ports["webserver"]
    }
  }

  dynamic "service_registries" {
    for_each = each.key == "code_server" ? [aws_service_discovery_service.code_server.arn] : []
    content {
      registry_arn = service_registries.value
    }
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "log_group_arns" {
  description = "Log group ARN by process."
  value       = { for k, g in aws_cloudwatch_log_group.process : k => g.arn }
}

output "run_task_definition_arn" {
  description = "Latest run task definition."
  value       = aws_ecs_task_definition.process["run"].arn
}
