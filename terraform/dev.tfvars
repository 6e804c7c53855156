# dev: replace the network ids and the certificate with your account's.
region                   = "eu-west-1"
environment              = "dev"
vpc_id                   = "vpc-0123456789abcdef0"
private_subnet_ids       = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
certificate_arn          = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
image_tag                = "dev"
compute                  = "glue"
db_instance_class        = "db.t4g.small"
db_multi_az              = false # a dev outage costs little; prod has a standby
db_backup_retention_days = 3
log_retention_days       = 365
# The operational PostgreSQL of the database sources (terraform/README.md); the password stays in Secrets Manager.
# source_database = {
#   host                = "shop.cluster-abc123.eu-west-1.rds.amazonaws.com"
#   database            = "shop"
#   username            = "lakehouse"
#   password_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/lakehouse-AbCdEf"
#   security_group_id   = "sg-0123456789abcdef0"
# }
