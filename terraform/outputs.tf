output "bucket_names" {
  description = "Bucket by role (bronze, silver, gold, artifacts, landing)."
  value       = local.bucket_names
}

output "glue_database_names" {
  description = "Glue database by layer."
  value       = module.catalog.database_names
}

output "glue_job_name" {
  description = "LAKEHOUSE_GLUE_JOB_NAME."
  value       = module.catalog.job_name
}

output "emr_application_id" {
  description = "LAKEHOUSE_EMR_APPLICATION_ID."
  value       = module.emr.application_id
}

output "emr_execution_role_arn" {
  description = "LAKEHOUSE_EMR_EXECUTION_ROLE_ARN."
  value       = module.iam.emr_execution_role_arn
}

output "ecr_repository_urls" {
  description = "Where deploy/README.md pushes the images (lakehouse, emr)."
  value       = module.ecr.repository_urls
}

output "webserver_url" {
  description = "The Dagster UI, inside the VPC."
  value       = "https://${module.alb.dns_name}"
}

output "run_task_definition_arn" {
  description = "The run task definition EcsRunLauncher launches (latest revision)."
  value       = module.ecs.run_task_definition_arn
}

output "athena_work_group" {
  description = "LAKEHOUSE_ATHENA_WORK_GROUP: the workgroup of the dbt models."
  value       = module.athena.work_group_name
}

output "athena_staging_dir" {
  description = "LAKEHOUSE_ATHENA_STAGING_DIR: the workgroup's query results."
  value       = module.athena.output_location
}

output "run_task_security_group_id" {
  description = "The group of the run tasks (and the daemon): the source database's security group must admit it on its port."
  value       = module.network.task_security_group_ids["run"]
}
