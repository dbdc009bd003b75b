resource "aws_kms_key" "platform" {
  description             = "${local.name}: data, artifacts, databases, the shared home and secrets"
  deletion_window_in_days = local.production ? 30 : 7
  enable_key_rotation     = true

  # AWS's default key policy, written out: the account delegates to IAM, so who may use the key is
  # decided by IAM policies (the IRSA roles below) and by the services' grants (RDS, EFS, S3).
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{
      Sid       = "AccountIAMPolicies"
      Effect    = "Allow"
      Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*" # in a key policy, "*" is this key
    }]
  })
}

resource "aws_kms_alias" "platform" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.platform.key_id
}

# Least privilege through IRSA: each Kubernetes service account gets only what its pods do.
# - seqops-platform (Airflow workers, training pods): read and write both buckets, read the secrets.
# - seqops-serving (the prediction service): read model artifacts only, read the secrets.

data "aws_iam_policy_document" "platform" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [module.artifacts_bucket.arn, module.data_bucket.arn]
  }
  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.artifacts_bucket.arn}/*", "${module.data_bucket.arn}/*"]
  }
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.platform.arn]
  }
  statement {
    sid     = "ReadSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.platform.arn,
      aws_db_instance.postgres.master_user_secret[0].secret_arn,
    ]
  }
}

data "aws_iam_policy_document" "serving" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket"]
    resources = [module.artifacts_bucket.arn]
  }
  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${module.artifacts_bucket.arn}/*"]
  }
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.platform.arn]
  }
  statement {
    sid     = "ReadSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.platform.arn,
      aws_db_instance.postgres.master_user_secret[0].secret_arn,
    ]
  }
}

resource "aws_iam_policy" "platform" {
  name   = "${local.name}-platform"
  policy = data.aws_iam_policy_document.platform.json
}

resource "aws_iam_policy" "serving" {
  name   = "${local.name}-serving"
  policy = data.aws_iam_policy_document.serving.json
}

module "platform_irsa" {
  source = "git::https://github.com/terraform-aws-modules/terraform-aws-iam.git//modules/iam-role-for-service-accounts-eks?ref=0792d7f2753c265e3d610a58348fa1c551cbe4b8" # v5.59.0

  role_name = "${local.name}-platform"
  role_policy_arns = {
    platform = aws_iam_policy.platform.arn
  }
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["${var.serving_namespace}:seqops-platform"]
    }
  }
}

module "serving_irsa" {
  source = "git::https://github.com/terraform-aws-modules/terraform-aws-iam.git//modules/iam-role-for-service-accounts-eks?ref=0792d7f2753c265e3d610a58348fa1c551cbe4b8" # v5.59.0

  role_name = "${local.name}-serving"
  role_policy_arns = {
    serving = aws_iam_policy.serving.arn
  }
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["${var.serving_namespace}:seqops-serving"]
    }
  }
}

# The EFS CSI driver (the shared SEQOPS_HOME volume, storage.tf) provisions access points with it.
module "efs_csi_irsa" {
  source = "git::https://github.com/terraform-aws-modules/terraform-aws-iam.git//modules/iam-role-for-service-accounts-eks?ref=0792d7f2753c265e3d610a58348fa1c551cbe4b8" # v5.59.0

  role_name             = "${local.name}-efs-csi"
  attach_efs_csi_policy = true
  oidc_providers = {
    main = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:efs-csi-controller-sa"]
    }
  }
}

# RDS enhanced monitoring publishes OS metrics through this role (AWS's managed policy for it).
data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
