# One role per process and per Spark platform, each with only what docs/aws.md and
# docs/remote-compute.md say it needs, on the stack's own buckets, databases, logs and job.
variable "name" {
  description = "Name prefix of the stack."
  type        = string
}

variable "region" {
  description = "Region of the stack."
  type        = string
}

variable "account_id" {
  description = "Account of the stack."
  type        = string
}

variable "partition" {
  description = "AWS partition."
  type        = string
}

variable "bucket_arns" {
  description = "Bucket ARN by role (bronze, silver, gold, artifacts, landing)."
  type        = map(string)
}

variable "data_layers" {
  description = "Layers whose buckets hold tables (read and written)."
  type        = list(string)
}

variable "landing_prefix" {
  description = "Key prefix of landed files (read only)."
  type        = string
}

variable "database_names" {
  description = "The Glue databases of the layers."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The stack's key (buckets, logs, secret)."
  type        = string
}

variable "glue_job_name" {
  description = "The generic Glue job."
  type        = string
}

variable "glue_log_group_prefix" {
  description = "Log group prefix of Glue jobs (/aws-glue/jobs)."
  type        = string
}

variable "emr_application_arn" {
  description = "The EMR Serverless application."
  type        = string
}

variable "emr_log_group_arn" {
  description = "Log group of EMR Serverless job runs."
  type        = string
}

variable "ecs_log_group_arns" {
  description = "Log group ARN by Dagster process."
  type        = map(string)
}

variable "ecr_repository_arns" {
  description = "The stack's image repositories."
  type        = map(string)
}

variable "database_secret_arn" {
  description = "The RDS-managed master user secret."
  type        = string
}

variable "source_secret_arns" {
  description = "The source database's password secret, which ECS injects into the run tasks (empty: no database sources)."
  type        = list(string)
}

variable "source_kms_key_arns" {
  description = "The customer managed key of that secret (empty: none, or aws/secretsmanager)."
  type        = list(string)
}

variable "compute_logs_prefix" {
  description = "Key prefix of Dagster compute logs in the artifacts bucket."
  type        = string
}

variable "run_task_family" {
  description = "Family of the run task definition."
  type        = string
}

variable "cluster_name" {
  description = "The ECS cluster."
  type        = string
}

variable "athena_work_group_arn" {
  description = "The Athena workgroup dbt-athena runs the dbt models in."
  type        = string
}

variable "athena_results_prefix" {
  description = "Key prefix of that workgroup's query results in the artifacts bucket."
  type        = string
}

variable "gold_database_name" {
  description = "The Gold Glue database, where the dbt models are tables."
  type        = string
}

locals {
  artifacts   = var.bucket_arns["artifacts"]
  table_arns  = [for layer in var.data_layers : var.bucket_arns[layer]]
  glue_prefix = "arn:${var.partition}:glue:${var.region}:${var.account_id}"
  ecs_prefix  = "arn:${var.partition}:ecs:${var.region}:${var.account_id}"
  glue_job    = "${local.glue_prefix}:job/${var.glue_job_name}"
  glue_logs   = "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:${var.glue_log_group_prefix}/*"
  services = {
    ecs_tasks = "ecs-tasks.amazonaws.com"
    glue      = "glue.amazonaws.com"
    emr       = "emr-serverless.amazonaws.com"
  }
}

data "aws_iam_policy_document" "assume" {
  for_each = local.services
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [var.account_id]
    }
  }
}

# ---- what the lakehouse code reads and writes (docs/aws.md), wherever it runs ------------------
data "aws_iam_policy_document" "lakehouse_data" {
  statement {
    sid       = "ListBuckets" # without it S3 answers 403, not 404, for a missing object
    actions   = ["s3:ListBucket"]
    resources = concat(local.table_arns, [var.bucket_arns["landing"], local.artifacts])
  }
  statement {
    sid       = "TableData"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [for arn in local.table_arns : "${arn}/*"]
  }
  statement {
    sid       = "ReadLanding"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arns["landing"]}/${var.landing_prefix}/*"]
  }
  statement {
    sid     = "Catalog"
    actions = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartitions", "glue:BatchCreatePartition"]
    resources = concat(
      ["${local.glue_prefix}:catalog"],
      [for db in var.database_names : "${local.glue_prefix}:database/${db}"],
      [for db in var.database_names : "${local.glue_prefix}:table/${db}/*"],
    )
  }
  statement {
    sid       = "BucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

# ---- Spark jobs (Glue, EMR Serverless): Pipes objects, the driver, releases -----------------------
data "aws_iam_policy_document" "spark_job" {
  source_policy_documents = [data.aws_iam_policy_document.lakehouse_data.json]
  statement {
    sid       = "PipesAndArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.artifacts}/pipes/*", "${local.artifacts}/driver/*", "${local.artifacts}/releases/*"]
  }
}

data "aws_iam_policy_document" "glue_job" {
  source_policy_documents = [data.aws_iam_policy_document.spark_job.json]
  statement {
    sid     = "JobLogs"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"]
    # Glue names the log groups (/aws-glue/jobs/output, /error, /logs-v2, and with a security
    # configuration /aws-glue/jobs/<configuration>-role/...): the prefix is as narrow as it gets.
    resources = [local.glue_logs, "${local.glue_logs}:*"]
  }
}

data "aws_iam_policy_document" "emr_job" {
  source_policy_documents = [data.aws_iam_policy_document.spark_job.json]
  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [var.emr_log_group_arn, "${var.emr_log_group_arn}:*"]
  }
}

# ---- the code location (code server and run tasks): start and follow Spark jobs --------------------
data "aws_iam_policy_document" "code_location" {
  source_policy_documents = [data.aws_iam_policy_document.lakehouse_data.json]
  statement {
    sid       = "GlueJob"
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    resources = [local.glue_job]
  }
  statement {
    sid       = "EmrServerless"
    actions   = ["emr-serverless:StartJobRun", "emr-serverless:GetJobRun", "emr-serverless:ListJobRuns", "emr-serverless:CancelJobRun", "emr-serverless:GetDashboardForJobRun", "emr-serverless:GetApplication", "emr-serverless:TagResource"]
    resources = [var.emr_application_arn, "${var.emr_application_arn}/jobruns/*"]
  }
  statement {
    sid       = "PassEmrExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.emr_execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["emr-serverless.amazonaws.com"]
    }
  }
  statement {
    sid       = "Pipes"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.artifacts}/pipes/*"]
  }
  statement {
    sid       = "ReleaseCheck"
    actions   = ["s3:GetObject"]
    resources = ["${local.artifacts}/releases/*"]
  }
  statement {
    sid       = "JobLogsForErrors" # the step names a failed job's CloudWatch streams and reads its messages
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents"]
    resources = [local.glue_logs, "${local.glue_logs}:*", var.emr_log_group_arn, "${var.emr_log_group_arn}:*"]
  }
}

# ---- Dagster processes ---------------------------------------------------------------------------
data "aws_iam_policy_document" "compute_logs_read" {
  statement {
    sid       = "ComputeLogsList"
    actions   = ["s3:ListBucket"]
    resources = [local.artifacts]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.compute_logs_prefix}/*"]
    }
  }
  statement {
    sid       = "ComputeLogsRead"
    actions   = ["s3:GetObject"]
    resources = ["${local.artifacts}/${var.compute_logs_prefix}/*"]
  }
  statement {
    sid       = "ArtifactsKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

data "aws_iam_policy_document" "compute_logs_write" {
  source_policy_documents = [data.aws_iam_policy_document.compute_logs_read.json]
  statement {
    sid       = "ComputeLogsWrite"
    actions   = ["s3:PutObject"]
    resources = ["${local.artifacts}/${var.compute_logs_prefix}/*"]
  }
}

# Stop and watch run tasks (webserver: terminate from the UI; daemon: run monitoring).
data "aws_iam_policy_document" "run_tasks_watch" {
  statement {
    sid       = "RunTasks"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["${local.ecs_prefix}:task/${var.cluster_name}/*"]
  }
}

data "aws_iam_policy_document" "daemon" {
  source_policy_documents = [data.aws_iam_policy_document.run_tasks_watch.json, data.aws_iam_policy_document.compute_logs_read.json]
  statement {
    sid       = "LaunchRuns"
    actions   = ["ecs:RunTask"]
    resources = ["${local.ecs_prefix}:task-definition/${var.run_task_family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = ["${local.ecs_prefix}:cluster/${var.cluster_name}"]
    }
  }
  statement {
    sid       = "TagRunTasks" # propagate_tags (deploy/dagster.yaml)
    actions   = ["ecs:TagResource"]
    resources = ["${local.ecs_prefix}:task/${var.cluster_name}/*"]
  }
  statement {
    sid       = "PassRunRoles"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.task["run"].arn, aws_iam_role.task_execution.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    # The launcher reads the run task definition and its own task's network interface
    # (use_current_ecs_task_config); these actions support no resource-level permissions.
    sid       = "DescribeForLaunch"
    actions   = ["ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"]
    resources = ["*"]
  }
}

# ---- dbt-athena (run tasks): the dbt models as Iceberg tables in Gold, built by Athena -------------
# Athena runs each query with the run task's credentials. Reading Silver and writing Gold (the layers'
# buckets, glue:GetTable/CreateTable/UpdateTable, the key) is lakehouse_data's already; this adds the
# workgroup, its results prefix, the catalog listing dbt does before a build, and dropping Gold tables
# (a model is rebuilt as <model>__ha, the old table renamed <model>__bkp, the new one renamed over it,
# then <model>__bkp dropped: its Glue table deleted, its files under s3://<gold>/gold/dbt/ removed).
data "aws_iam_policy_document" "dbt_athena" {
  statement {
    sid       = "AthenaQueries" # GetWorkGroup: dbt-athena reads whether the workgroup enforces its result location
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StopQueryExecution", "athena:GetWorkGroup"]
    resources = [var.athena_work_group_arn]
  }
  statement {
    sid       = "AthenaResults" # Athena writes each query's results here; GetQueryResults reads them back
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = ["${local.artifacts}/${var.athena_results_prefix}/*"]
  }
  statement {
    sid       = "AthenaResultsUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [local.artifacts]
  }
  statement {
    sid       = "AthenaBucketRegions" # Athena looks up the region of the results bucket and of the tables' buckets
    actions   = ["s3:GetBucketLocation"]
    resources = [local.artifacts, var.bucket_arns["silver"], var.bucket_arns["gold"]]
  }
  statement {
    # dbt lists the catalog's databases before a build (to create missing schemas); GetDatabases is
    # authorized on the catalog and every database, and returns only their names and properties.
    sid       = "DbtListSchemas"
    actions   = ["glue:GetDatabases"]
    resources = ["${local.glue_prefix}:catalog", "${local.glue_prefix}:database/*"]
  }
  statement {
    sid       = "DbtReplaceGoldTables" # dropping a table is authorized on it, its database and the catalog
    actions   = ["glue:DeleteTable"]
    resources = ["${local.glue_prefix}:catalog", "${local.glue_prefix}:database/${var.gold_database_name}", "${local.glue_prefix}:table/${var.gold_database_name}/*"]
  }
}

data "aws_iam_policy_document" "run" {
  source_policy_documents = [data.aws_iam_policy_document.code_location.json, data.aws_iam_policy_document.compute_logs_write.json, data.aws_iam_policy_document.dbt_athena.json]
}

locals {
  # The roles' keys, apart from their policies: the daemon's names the run task's role (a cycle otherwise).
  task_processes = toset(["webserver", "daemon", "code_server", "run"])
  task_policies = {
    webserver   = [data.aws_iam_policy_document.run_tasks_watch.json, data.aws_iam_policy_document.compute_logs_read.json]
    daemon      = [data.aws_iam_policy_document.daemon.json]
    code_server = [data.aws_iam_policy_document.code_location.json]
    run         = [data.aws_iam_policy_document.run.json]
  }
}

data "aws_iam_policy_document" "task" {
  for_each                = local.task_policies
  source_policy_documents = each.value
}

resource "aws_iam_role" "task" {
  for_each           = local.task_processes
  name               = "${var.name}-${replace(each.key, "_", "-")}"
  description        = "Task role of the Dagster ${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs_tasks"].json
}

resource "aws_iam_role_policy" "task" {
  for_each = local.task_policies
  name     = "dagster-${replace(each.key, "_", "-")}"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.task[each.key].json
}

# ---- ECS task execution: pull images, write container logs, read the database secrets ----------
data "aws_iam_policy_document" "task_execution" {
  statement {
    sid       = "EcrToken" # GetAuthorizationToken supports no resource-level permission
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.ecr_repository_arns["lakehouse"]]
  }
  statement {
    sid       = "ContainerLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for arn in values(var.ecs_log_group_arns) : "${arn}:*"]
  }
  statement {
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_secret_arn]
  }
  statement {
    sid       = "DecryptImagesAndSecret"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
  # The source database's password (LAKEHOUSE_POSTGRES_PASSWORD of the run tasks): only with one.
  dynamic "statement" {
    for_each = length(var.source_secret_arns) > 0 ? [var.source_secret_arns] : []
    content {
      sid       = "SourceDatabaseSecret"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = statement.value
    }
  }
  dynamic "statement" {
    for_each = length(var.source_kms_key_arns) > 0 ? [var.source_kms_key_arns] : []
    content {
      sid       = "DecryptSourceDatabaseSecret"
      actions   = ["kms:Decrypt"]
      resources = statement.value
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${var.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role" "task_execution" {
  name               = "${var.name}-task-execution"
  description        = "ECS task execution role of the Dagster tasks: images, logs, the database secret"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs_tasks"].json
}

resource "aws_iam_role_policy" "task_execution" {
  name   = "task-execution"
  role   = aws_iam_role.task_execution.id
  policy = data.aws_iam_policy_document.task_execution.json
}

# ---- Spark platforms -------------------------------------------------------------------------------
resource "aws_iam_role" "glue_job" {
  name               = "${var.name}-glue-job"
  description        = "Role of the generic Glue job ${var.glue_job_name}"
  assume_role_policy = data.aws_iam_policy_document.assume["glue"].json
}

resource "aws_iam_role_policy" "glue_job" {
  name   = "glue-job"
  role   = aws_iam_role.glue_job.id
  policy = data.aws_iam_policy_document.glue_job.json
}

resource "aws_iam_role" "emr_execution" {
  name               = "${var.name}-emr-execution"
  description        = "Execution role of EMR Serverless job runs"
  assume_role_policy = data.aws_iam_policy_document.assume["emr"].json
}

resource "aws_iam_role_policy" "emr_execution" {
  name   = "emr-execution"
  role   = aws_iam_role.emr_execution.id
  policy = data.aws_iam_policy_document.emr_job.json
}

output "task_role_arns" {
  description = "Task role ARN by Dagster process (webserver, daemon, code_server, run)."
  value       = { for k, r in aws_iam_role.task : k => r.arn }
}

output "task_execution_role_arn" {
  description = "Execution role of every Dagster task."
  value       = aws_iam_role.task_execution.arn
}

output "glue_job_role_arn" {
  description = "Role of the Glue job."
  value       = aws_iam_role.glue_job.arn
}

output "emr_execution_role_arn" {
  description = "Role EMR Serverless job runs assume (LAKEHOUSE_EMR_EXECUTION_ROLE_ARN)."
  value       = aws_iam_role.emr_execution.arn
}
