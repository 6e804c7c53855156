# The stack's image repositories: the Dagster image (all four processes) and the EMR Serverless image.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "kms_key_arn" {
  description = "Key the images are encrypted with."
  type        = string
}

variable "account_id" {
  description = "Account whose EMR Serverless applications may pull the EMR image."
  type        = string
}

locals {
  # key => repository name; deploy/README.md builds deploy/Dockerfile and deploy/emr/Dockerfile into them.
  repositories = {
    lakehouse = "${var.name}"
    emr       = "${var.name}-emr"
  }
}

resource "aws_ecr_repository" "this" {
  for_each             = local.repositories
  name                 = each.value
  image_tag_mutability = "IMMUTABLE" # a tag names one build: task definitions cannot change under a service
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 50 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 50 }
      action       = { type = "expire" }
    }]
  })
}

# EMR Serverless pulls the custom image itself (not through the execution role).
data "aws_iam_policy_document" "emr_pull" {
  statement {
    sid     = "EmrServerlessPull"
    actions = ["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

resource "aws_ecr_repository_policy" "emr" {
  repository = aws_ecr_repository.this["emr"].name
  policy     = data.aws_iam_policy_document.emr_pull.json
}

output "repository_urls" {
  description = "Repository URL by key (lakehouse, emr)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARN by key."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}
