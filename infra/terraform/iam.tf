resource "aws_kms_key" "platform" {
  description             = "${local.name}: data, artifacts, databases and secrets"
  deletion_window_in_days = local.production ? 30 : 7
  enable_key_rotation     = true
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
    resources = [for b in aws_s3_bucket.this : b.arn]
  }
  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = [for b in aws_s3_bucket.this : "${b.arn}/*"]
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
    resources = [aws_s3_bucket.this["artifacts"].arn]
  }
  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.this["artifacts"].arn}/*"]
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
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.48"

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
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts-eks"
  version = "~> 5.48"

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
