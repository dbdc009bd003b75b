output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "Where to push the platform image (infra/docker/Dockerfile)."
  value       = aws_ecr_repository.platform.repository_url
}

output "postgres_endpoint" {
  description = "host:port of RDS PostgreSQL."
  value       = aws_db_instance.postgres.endpoint
}

output "postgres_master_secret_arn" {
  description = "Secrets Manager ARN of the RDS master credentials (managed by RDS)."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "redis_endpoint" {
  description = "Primary endpoint of the Redis replication group (TLS, auth token in the platform secret)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "shared_home_volume_handle" {
  description = "volumeHandle of the shared SEQOPS_HOME volume (EFS file system and access point) for infra/k8s/shared-home.yaml."
  value       = "${aws_efs_file_system.home.id}::${aws_efs_access_point.home.id}"
}

output "platform_secret_arn" {
  description = "Secrets Manager ARN of the platform's logins and keys."
  value       = aws_secretsmanager_secret.platform.arn
}

output "platform_role_arn" {
  description = "IRSA role of the seqops-platform service account (Airflow workers, training pods)."
  value       = module.platform_irsa.iam_role_arn
}

output "serving_role_arn" {
  description = "IRSA role of the seqops-serving service account (the prediction service)."
  value       = module.serving_irsa.iam_role_arn
}

output "seqops_settings" {
  description = "Non-secret SEQOPS_* settings of the production profile; the Helm values take them as env (secrets come from platform_secret_arn and postgres_master_secret_arn)."
  value = {
    SEQOPS_PROFILE              = "production"
    SEQOPS_AIRFLOW_EXECUTOR     = "KubernetesExecutor"
    SEQOPS_MLFLOW_ARTIFACT_ROOT = "s3://${module.artifacts_bucket.id}/mlflow"
    SEQOPS_OBJECT_STORE_ROOT    = "s3://${module.data_bucket.id}"
    SEQOPS_FEAST_ONLINE_REDIS   = "${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379,ssl=true"
  }
}
