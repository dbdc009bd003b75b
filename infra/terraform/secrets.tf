# Secrets are generated here and kept in Secrets Manager (KMS-encrypted); nothing secret is in a
# tfvars file or in git. The RDS master password is managed by RDS itself (manage_master_user_password).
# The platform reads them through the External Secrets operator or the CSI driver (infra/helm).

resource "random_password" "admin" {
  length  = 24
  special = false
}

resource "random_password" "redis" {
  length  = 32
  special = false # ElastiCache auth tokens allow only printable ASCII without @, " and /
}

resource "random_password" "serving_token" {
  length  = 40
  special = false
}

resource "random_id" "airflow_fernet" {
  byte_length = 32
}

resource "random_password" "airflow_secret" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "platform" {
  name                    = "${local.name}/platform"
  description             = "seqops logins and keys: admin password, serving token, Airflow keys, Redis auth"
  kms_key_id              = aws_kms_key.platform.arn
  recovery_window_in_days = local.production ? 30 : 0
}

resource "aws_secretsmanager_secret_version" "platform" {
  secret_id = aws_secretsmanager_secret.platform.id
  secret_string = jsonencode({
    SEQOPS_ADMIN_PASSWORD     = random_password.admin.result
    SEQOPS_SERVING_TOKEN      = random_password.serving_token.result
    AIRFLOW__CORE__FERNET_KEY = random_id.airflow_fernet.b64_url
    AIRFLOW__API__SECRET_KEY  = random_password.airflow_secret.result
    REDIS_AUTH_TOKEN          = random_password.redis.result
  })
}
