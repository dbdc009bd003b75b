# seqops on AWS: network, EKS with a GPU node group, RDS PostgreSQL, ElastiCache Redis, S3, ECR,
# Secrets Manager and IRSA roles. Resources are grouped by purpose: network.tf, cluster.tf,
# databases.tf, storage.tf, secrets.tf, iam.tf; outputs.tf feeds the platform's settings.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The zones are named by ID (stable across accounts) and allow-listed, so the set never grows by
# itself when AWS opens a zone in the region.
data "aws_availability_zones" "selected" {
  state = "available"
  filter {
    name   = "zone-id"
    values = var.availability_zone_ids
  }
}

locals {
  name       = "${var.project}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  azs        = data.aws_availability_zones.selected.names
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
