# The lakehouse stack: storage, catalog and Spark, the Dagster services on ECS, their database.
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  name       = "lakehouse-${var.environment}"

  # The code's naming rules (lakehouse/settings.py, exported by `lakehouse infra export`).
  environment_underscored = replace(var.environment, "-", "_")
  default_bucket_names = {
    for layer in concat(var.lakehouse.bucket_layers, ["landing"]) :
    layer => replace(replace(var.lakehouse.bucket_name, "{layer}", layer), "{environment}", var.environment)
  }
  bucket_names = merge(local.default_bucket_names, var.bucket_names)
  database_names = {
    for layer in var.lakehouse.layers :
    layer => replace(replace(var.lakehouse.database_name, "{layer}", layer), "{environment_underscored}", local.environment_underscored)
  }
  glue_job_name = replace(var.lakehouse.glue_job_name, "{environment}", var.environment)

  # Transformations that may run on each remote engine: pinned to it, or following LAKEHOUSE_COMPUTE
  # (counted whatever var.compute is now, so switching it needs no capacity change).
  remote_transformations = {
    for engine in ["glue", "emr-serverless"] : engine => [
      for key, t in var.lakehouse.transformations : t
      if t.engine == engine || t.engine == null
    ]
  }
  # Every such transformation may run at once (one partition each; a backfill is one run).
  glue_max_concurrent_runs = max(1, length(local.remote_transformations["glue"]))
  emr_max_vcpu             = max(4, sum(concat([0], [for t in local.remote_transformations["emr-serverless"] : var.lakehouse.profiles[t.profile].emr_vcpu])))
  emr_max_memory_gb        = max(16, sum(concat([0], [for t in local.remote_transformations["emr-serverless"] : var.lakehouse.profiles[t.profile].emr_memory_gb])))

  compute_logs_prefix    = "compute-logs"
  run_task_family        = "${local.name}-run"
  code_server_dns_name   = "code-server"
  service_discovery_zone = "${local.name}.internal"
  database_name          = "dagster"
  database_username      = "dagster"
  log_group_prefix       = "/lakehouse/${var.environment}"
  glue_log_group_prefix  = "/aws-glue/jobs"
  emr_log_group_name     = "/aws/emr-serverless/${local.name}"
  athena_work_group_name = "${local.name}-dbt"
  athena_results_prefix  = "athena" # LAKEHOUSE_ATHENA_STAGING_DIR's default: s3://<artifacts>/athena/
  data_bucket_layers     = var.lakehouse.layers
}

module "kms" {
  source     = "./modules/kms"
  name       = local.name
  region     = var.region
  account_id = local.account_id
  partition  = local.partition
}

module "storage" {
  source                  = "./modules/storage"
  bucket_names            = local.bucket_names
  logs_bucket_name        = "${local.name}-logs-${local.account_id}"
  kms_key_arn             = module.kms.key_arn
  noncurrent_version_days = var.noncurrent_version_days
  pipes_expiry_days       = var.pipes_expiry_days
  logs_retention_days     = var.logs_retention_days
}

module "ecr" {
  source      = "./modules/ecr"
  name        = local.name
  kms_key_arn = module.kms.key_arn
  account_id  = local.account_id
}

# The operational PostgreSQL the database sources read (var.source_database; null: none, and no
# variable, permission or rule below is added for it).
module "source_database" {
  source   = "./modules/source_database"
  database = var.source_database
}

module "network" {
  source                     = "./modules/network"
  name                       = local.name
  vpc_id                     = var.vpc_id
  webserver_client_group_ids = var.webserver_client_security_group_ids
  source_database_egress     = module.source_database.egress
}

module "rds" {
  source                = "./modules/rds"
  name                  = local.name
  subnet_ids            = var.private_subnet_ids
  security_group_id     = module.network.database_security_group_id
  kms_key_arn           = module.kms.key_arn
  instance_class        = var.db_instance_class
  multi_az              = var.db_multi_az
  backup_retention_days = var.db_backup_retention_days
  database_name         = local.database_name
  username              = local.database_username
}

module "iam" {
  source                = "./modules/iam"
  name                  = local.name
  region                = var.region
  account_id            = local.account_id
  partition             = local.partition
  bucket_arns           = module.storage.bucket_arns
  data_layers           = local.data_bucket_layers
  landing_prefix        = var.landing_prefix
  database_names        = values(local.database_names)
  kms_key_arn           = module.kms.key_arn
  glue_job_name         = local.glue_job_name
  glue_log_group_prefix = local.glue_log_group_prefix
  emr_application_arn   = module.emr.application_arn
  emr_log_group_arn     = module.emr.log_group_arn
  ecs_log_group_arns    = module.ecs.log_group_arns
  ecr_repository_arns   = module.ecr.repository_arns
  database_secret_arn   = module.rds.master_user_secret_arn
  source_secret_arns    = module.source_database.secret_arns
  source_kms_key_arns   = module.source_database.kms_key_arns
  compute_logs_prefix   = local.compute_logs_prefix
  run_task_family       = local.run_task_family
  cluster_name          = module.ecs.cluster_name
  athena_work_group_arn = module.athena.work_group_arn
  athena_results_prefix = local.athena_results_prefix
  gold_database_name    = local.database_names["gold"]
}

module "catalog" {
  source                  = "./modules/catalog"
  name                    = local.name
  database_names          = local.database_names
  bucket_names            = local.bucket_names
  job_name                = local.glue_job_name
  job_role_arn            = module.iam.glue_job_role_arn
  kms_key_arn             = module.kms.key_arn
  max_concurrent_runs     = local.glue_max_concurrent_runs
  log_group_prefix        = local.glue_log_group_prefix
  log_retention_days      = var.log_retention_days
  default_profile_workers = var.lakehouse.profiles["small"].glue_workers
  default_profile_type    = var.lakehouse.profiles["small"].glue_worker_type
}

module "athena" {
  source              = "./modules/athena"
  name                = local.athena_work_group_name
  results_bucket_name = local.bucket_names["artifacts"]
  results_prefix      = local.athena_results_prefix
  kms_key_arn         = module.kms.key_arn
}

module "emr" {
  source             = "./modules/emr"
  name               = local.name
  image_uri          = "${module.ecr.repository_urls["emr"]}:${var.image_tag}"
  subnet_ids         = var.private_subnet_ids
  security_group_id  = module.network.spark_security_group_id
  max_vcpu           = local.emr_max_vcpu
  max_memory_gb      = local.emr_max_memory_gb
  log_group_name     = local.emr_log_group_name
  log_retention_days = var.log_retention_days
  kms_key_arn        = module.kms.key_arn
}

module "alb" {
  source            = "./modules/alb"
  name              = local.name
  vpc_id            = var.vpc_id
  subnet_ids        = var.private_subnet_ids
  security_group_id = module.network.alb_security_group_id
  certificate_arn   = var.certificate_arn
  logs_bucket_name  = module.storage.logs_bucket_name
}

# The values of deploy/environment.json's non-secret variables, by name: the ecs module fails
# when the file lists a name this map lacks, unless the file marks it optional (the source
# database's, which module.source_database gives when var.source_database is set).
locals {
  deploy_environment = jsondecode(file("${path.root}/../deploy/environment.json"))
  environment_values = {
    DAGSTER_PG_HOST                  = module.rds.address
    DAGSTER_PG_PORT                  = tostring(module.rds.port)
    DAGSTER_PG_DB                    = local.database_name
    DAGSTER_PG_USERNAME              = local.database_username
    DAGSTER_COMPUTE_LOGS_BUCKET      = local.bucket_names["artifacts"]
    DAGSTER_COMPUTE_LOGS_PREFIX      = local.compute_logs_prefix
    DAGSTER_RUN_TASK_DEFINITION      = local.run_task_family # the family: EcsRunLauncher runs its latest revision
    DAGSTER_CODE_SERVER_HOST         = "${local.code_server_dns_name}.${local.service_discovery_zone}"
    AWS_REGION                       = var.region
    LAKEHOUSE_ENV                    = "aws"
    LAKEHOUSE_AWS_REGION             = var.region
    LAKEHOUSE_ENVIRONMENT_NAME       = var.environment
    LAKEHOUSE_LANDING                = "s3://${local.bucket_names["landing"]}/${var.landing_prefix}"
    LAKEHOUSE_BRONZE_BUCKET          = local.bucket_names["bronze"]
    LAKEHOUSE_SILVER_BUCKET          = local.bucket_names["silver"]
    LAKEHOUSE_GOLD_BUCKET            = local.bucket_names["gold"]
    LAKEHOUSE_ARTIFACTS_BUCKET       = local.bucket_names["artifacts"]
    LAKEHOUSE_GLUE_DATABASE_BRONZE   = local.database_names["bronze"]
    LAKEHOUSE_GLUE_DATABASE_SILVER   = local.database_names["silver"]
    LAKEHOUSE_GLUE_DATABASE_GOLD     = local.database_names["gold"]
    LAKEHOUSE_COMPUTE                = var.compute
    LAKEHOUSE_GLUE_JOB_NAME          = local.glue_job_name
    LAKEHOUSE_EMR_APPLICATION_ID     = module.emr.application_id
    LAKEHOUSE_EMR_EXECUTION_ROLE_ARN = module.iam.emr_execution_role_arn
    LAKEHOUSE_ATHENA_WORK_GROUP      = module.athena.work_group_name
    LAKEHOUSE_ATHENA_STAGING_DIR     = module.athena.output_location # the workgroup's (enforced) result location
  }
  # Secret variables: where ECS reads each (Secrets Manager ARN, with the JSON key).
  secret_sources = {
    DAGSTER_PG_PASSWORD = "${module.rds.master_user_secret_arn}:password::"
  }
}

module "ecs" {
  source                 = "./modules/ecs"
  name                   = local.name
  region                 = var.region
  vpc_id                 = var.vpc_id
  subnet_ids             = var.private_subnet_ids
  kms_key_arn            = module.kms.key_arn
  log_group_prefix       = local.log_group_prefix
  log_retention_days     = var.log_retention_days
  image                  = "${module.ecr.repository_urls["lakehouse"]}:${var.image_tag}"
  environment_variables  = local.deploy_environment.variables
  processes              = local.deploy_environment.processes
  environment_values     = merge(local.environment_values, module.source_database.environment_values)
  secret_sources         = merge(local.secret_sources, module.source_database.secret_sources)
  task_role_arns         = module.iam.task_role_arns
  execution_role_arn     = module.iam.task_execution_role_arn
  security_group_ids     = module.network.task_security_group_ids
  sizes                  = var.service_sizes
  run_task_family        = local.run_task_family
  code_server_dns_name   = local.code_server_dns_name
  service_discovery_zone = local.service_discovery_zone
  webserver_target_group = module.alb.target_group_arn
}
