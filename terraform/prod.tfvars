# prod: replace the network ids and the certificate with your account's.
region                   = "eu-west-1"
environment              = "prod"
vpc_id                   = "vpc-0123456789abcdef1"
private_subnet_ids       = ["subnet-0123456789abcdef1", "subnet-0fedcba9876543211", "subnet-0a1b2c3d4e5f60718"]
certificate_arn          = "arn:aws:acm:eu-west-1:123456789012:certificate/11111111-1111-1111-1111-111111111111"
image_tag                = "1.0.0"
compute                  = "glue"
db_instance_class        = "db.m7g.large"
db_multi_az              = true
db_backup_retention_days = 14
log_retention_days       = 731
noncurrent_version_days  = 90
service_sizes = {
  webserver   = { cpu = 1024, memory = 4096 }
  daemon      = { cpu = 1024, memory = 2048 }
  code_server = { cpu = 2048, memory = 8192 }
  run         = { cpu = 2048, memory = 8192 }
}
# The operational PostgreSQL of the database sources (terraform/README.md); the password stays in Secrets Manager.
# source_database = {
#   host                = "shop.cluster-abc123.eu-west-1.rds.amazonaws.com"
#   database            = "shop"
#   username            = "lakehouse"
#   password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/lakehouse-AbCdEf"
#   security_group_id   = "sg-0123456789abcdef0"
# }
