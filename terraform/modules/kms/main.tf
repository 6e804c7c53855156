# One customer managed key for the stack's data at rest: buckets, logs, images, database, secret.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "region" {
  description = "Region of the stack."
  type        = string
}

variable "account_id" {
  description = "Account that owns the key."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, ...)."
  type        = string
}

data "aws_iam_policy_document" "key" {
  # In a key policy "*" as Resource means this key; the account's IAM policies then grant use of it
  # (the roles in modules/iam name the key's ARN).
  #checkov:skip=CKV_AWS_109:key policy: the account root must administer the key, "*" is the key itself
  #checkov:skip=CKV_AWS_111:key policy: "*" is the key itself, writes are limited by the roles' own policies
  #checkov:skip=CKV_AWS_356:key policy: Resource "*" is the key the policy is attached to
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${var.partition}:iam::${var.account_id}:root"]
    }
  }
  # CloudWatch Logs encrypts the stack's log groups with the key, only for this account's groups.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: data at rest of the lakehouse stack"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

output "key_arn" {
  description = "ARN of the stack's key."
  value       = aws_kms_key.this.arn
}
