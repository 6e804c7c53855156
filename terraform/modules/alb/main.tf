# Internal HTTPS load balancer in front of the Dagster webserver.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "vpc_id" {
  description = "The existing VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the load balancer."
  type        = list(string)
}

variable "security_group_id" {
  description = "Group of the load balancer."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener."
  type        = string
}

variable "logs_bucket_name" {
  description = "Bucket of the access logs."
  type        = string
}

resource "aws_lb" "webserver" {
  #checkov:skip=CKV2_AWS_28:internal load balancer reachable only from the listed security groups; WAF is for internet-facing ones
  #checkov:skip=CKV2_AWS_76:no WAF (see above), so no WAF Log4j rule either
  name                       = "${var.name}-web"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [var.security_group_id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  access_logs {
    bucket  = var.logs_bucket_name
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "webserver" {
  name        = "${var.name}-web"
  port        = 3000
  protocol    = "HTTP" # inside the VPC, between the load balancer's and the task's security groups
  target_type = "ip"
  vpc_id      = var.vpc_id
  health_check {
    path    = "/server_info"
    matcher = "200"
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.webserver.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06" # TLS 1.2 and 1.3 only
  certificate_arn   = var.certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.webserver.arn
  }
}

output "target_group_arn" {
  description = "Target group of the webserver service."
  value       = aws_lb_target_group.webserver.arn
}

output "dns_name" {
  description = "Internal DNS name of the load balancer."
  value       = aws_lb.webserver.dns_name
}
