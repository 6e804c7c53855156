# Security groups: no ingress from addresses, only from the groups that need each port.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "vpc_id" {
  description = "The existing VPC."
  type        = string
}

variable "webserver_client_group_ids" {
  description = "Groups whose members may open the webserver through its load balancer (443)."
  type        = list(string)
}

variable "source_database_egress" {
  description = "Where the run tasks reach the source database, by key: port and a security group or an IPv4 CIDR block (empty: nowhere)."
  type = map(object({
    port              = number
    security_group_id = string
    cidr_ipv4         = string
  }))
}

locals {
  groups = {
    alb         = "internal load balancer of the Dagster webserver"
    webserver   = "Dagster webserver tasks"
    daemon      = "Dagster daemon task and its run tasks (EcsRunLauncher gives runs the daemon task network)"
    code_server = "lakehouse code server tasks (gRPC 4000)"
    spark       = "EMR Serverless job runs"
    database    = "RDS PostgreSQL of the Dagster instance"
  }
  # Who reaches whom: [from, to, port, why].
  rules = [
    ["alb", "webserver", 3000, "load balancer to the webserver UI"],
    ["webserver", "code_server", 4000, "webserver to the code server's gRPC"],
    ["daemon", "code_server", 4000, "daemon and run tasks to the code server's gRPC"],
    ["webserver", "database", 5432, "webserver to the instance database"],
    ["daemon", "database", 5432, "daemon and run tasks to the instance database"],
    ["code_server", "database", 5432, "code server to the instance database"],
  ]
  # Tasks and Spark reach the AWS APIs (S3, Glue, ECS, ECR, Logs, Secrets Manager) over HTTPS, through NAT or VPC endpoints.
  https_egress = ["webserver", "daemon", "code_server", "spark"]
}

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:each group is attached in another module (alb, ecs, rds, emr) through this module's outputs, which checkov's graph does not follow
  for_each    = local.groups
  name        = "${var.name}-${replace(each.key, "_", "-")}"
  description = each.value
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "internal" {
  for_each                     = { for r in local.rules : "${r[0]}-${r[1]}" => r }
  security_group_id            = aws_security_group.this[each.value[1]].id
  referenced_security_group_id = aws_security_group.this[each.value[0]].id
  from_port                    = each.value[2]
  to_port                      = each.value[2]
  ip_protocol                  = "tcp"
  description                  = each.value[3]
}

resource "aws_vpc_security_group_egress_rule" "internal" {
  for_each                     = { for r in local.rules : "${r[0]}-${r[1]}" => r }
  security_group_id            = aws_security_group.this[each.value[0]].id
  referenced_security_group_id = aws_security_group.this[each.value[1]].id
  from_port                    = each.value[2]
  to_port                      = each.value[2]
  ip_protocol                  = "tcp"
  description                  = each.value[3]
}

resource "aws_vpc_security_group_ingress_rule" "alb_clients" {
  for_each                     = toset(var.webserver_client_group_ids)
  security_group_id            = aws_security_group.this["alb"].id
  referenced_security_group_id = each.value
  from_port                    = 443
  to_port                      = 443
  ip_protocol                  = "tcp"
  description                  = "clients of the Dagster UI"
}

# Run tasks (the daemon's group, see task_security_group_ids) to the operational PostgreSQL the
# database sources read. Its own group must admit them: it is not the stack's, so no ingress here.
resource "aws_vpc_security_group_egress_rule" "source_database" {
  for_each                     = var.source_database_egress
  security_group_id            = aws_security_group.this["daemon"].id
  referenced_security_group_id = each.value.security_group_id
  cidr_ipv4                    = each.value.cidr_ipv4
  from_port                    = each.value.port
  to_port                      = each.value.port
  ip_protocol                  = "tcp"
  description                  = "run tasks to the source PostgreSQL database"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each          = toset(local.https_egress)
  security_group_id = aws_security_group.this[each.value].id
  cidr_ipv4         = "0.0.0.0/0"
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
  description       = "AWS APIs over HTTPS"
}

output "alb_security_group_id" {
  description = "Group of the load balancer."
  value       = aws_security_group.this["alb"].id
}

output "database_security_group_id" {
  description = "Group of the database."
  value       = aws_security_group.this["database"].id
}

output "spark_security_group_id" {
  description = "Group of EMR Serverless job runs."
  value       = aws_security_group.this["spark"].id
}

output "task_security_group_ids" {
  description = "Group by Dagster process (webserver, daemon, code_server, run)."
  # Run tasks get the daemon's (deploy/dagster.yaml: use_current_ecs_task_config).
  value = merge(
    { for k in ["webserver", "daemon", "code_server"] : k => aws_security_group.this[k].id },
    { run = aws_security_group.this["daemon"].id },
  )
}
