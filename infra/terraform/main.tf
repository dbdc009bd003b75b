# seqops on AWS: network, EKS with a GPU node group, RDS PostgreSQL, ElastiCache Redis, S3, ECR,
# Secrets Manager and IRSA roles. Resources are grouped by purpose: network.tf, cluster.tf,
# databases.tf, storage.tf, secrets.tf, iam.tf; outputs.tf feeds the platform's settings.

data "aws_caller_identity" "current" {}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  name       = "${var.project}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  azs        = slice(data.aws_availability_zones.available.names, 0, var.availability_zones)
  production = var.environment == "prod"

  tags = merge(
    {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "terraform"
    },
    var.extra_tags,
  )
}
