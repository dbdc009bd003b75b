# Object storage: MLflow artifacts, the raw, curated (Delta) and quarantine zones of the data, and the
# server access logs of both.

# The platform's buckets (modules/private-bucket: private, versioned, KMS-encrypted, TLS only, access
# logged, object events on EventBridge, old versions expired after var.artifact_retention_days).

module "artifacts_bucket" {
  source = "./modules/private-bucket"

  name                      = "${local.name}-artifacts-${local.account_id}"
  purpose                   = "MLflow artifacts (models, backtests, drift reports)"
  kms_key_arn               = aws_kms_key.platform.arn
  access_log_bucket         = aws_s3_bucket.logs.id
  noncurrent_retention_days = var.artifact_retention_days
  force_destroy             = !local.production
}

module "data_bucket" {
  source = "./modules/private-bucket"

  name                      = "${local.name}-data-${local.account_id}"
  purpose                   = "raw, curated and quarantine zones"
  kms_key_arn               = aws_kms_key.platform.arn
  access_log_bucket         = aws_s3_bucket.logs.id
  noncurrent_retention_days = var.artifact_retention_days
  force_destroy             = !local.production
}

# Server access logs of both buckets. S3 delivers access logs only to a bucket encrypted with S3's
# own keys (SSE-S3), so this one bucket is not on the platform's KMS key; it holds no platform data.
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_18:This is the access-log target; logging its own access would log the log deliveries in a loop.
  #checkov:skip=CKV_AWS_145:S3 server access log delivery supports only SSE-S3 on the target bucket; it is encrypted with AES256 below.
  #checkov:skip=CKV_AWS_144:Access logs are an audit trail kept in-region for var.access_log_retention_days; the data buckets' DR choice (no replica) applies.
  bucket        = "${local.name}-logs-${local.account_id}"
  force_destroy = !local.production
  tags          = { Purpose = "server access logs of the artifacts and data buckets" }
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_notification" "logs" {
  bucket      = aws_s3_bucket.logs.id
  eventbridge = true
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogDelivery"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs.arn,
      "${aws_s3_bucket.logs.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# The platform image (built from the wheel: infra/docker/Dockerfile).
resource "aws_ecr_repository" "platform" {
  name                 = local.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !local.production

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.platform.arn
  }
}

resource "aws_ecr_lifecycle_policy" "platform" {
  repository = aws_ecr_repository.platform.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

# The shared SEQOPS_HOME. Tasks of one DAG run hand working files to the next task (a batch's verdict
# and its report, the window tables before the push to the offline store), and the next task may run
# in another pod on another node: every Airflow task pod and the training pod mount this file system
# at SEQOPS_HOME (infra/k8s/shared-home.yaml, infra/helm/values-airflow.yaml).
resource "aws_efs_file_system" "home" {
  creation_token   = "${local.name}-home"
  encrypted        = true
  kms_key_id       = aws_kms_key.platform.arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = { Name = "${local.name}-home", Purpose = "shared SEQOPS_HOME of the Airflow task pods" }
}

resource "aws_efs_backup_policy" "home" {
  file_system_id = aws_efs_file_system.home.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_security_group" "efs" {
  name_prefix = "${local.name}-efs-"
  description = "NFS to the shared home from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "NFS from the cluster nodes"
    from_port       = 2049
    to_port         = 2049
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_efs_mount_target" "home" {
  count = length(local.azs) # one per zone's private subnet

  file_system_id  = aws_efs_file_system.home.id
  subnet_id       = module.vpc.private_subnets[count.index]
  security_groups = [aws_security_group.efs.id]
}

# Pods mount the home through this access point: as the image's user (50000), under /seqops only.
resource "aws_efs_access_point" "home" {
  file_system_id = aws_efs_file_system.home.id

  posix_user {
    uid = 50000
    gid = 0
  }

  root_directory {
    path = "/seqops"
    creation_info {
      owner_uid   = 50000
      owner_gid   = 0
      permissions = "0750"
    }
  }

  tags = { Name = "${local.name}-home" }
}

data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["elasticfilesystem:*"]
    resources = [aws_efs_file_system.home.arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
  # A file-system policy replaces EFS's default (everyone may mount), and the CSI driver mounts
  # without IAM, as an anonymous client: allow mounting and writing through the mount targets,
  # which only the nodes reach (aws_security_group.efs); the access point sets the user and folder.
  statement {
    sid = "MountThroughTheMountTargets"
    actions = [
      "elasticfilesystem:ClientMount",
      "elasticfilesystem:ClientWrite",
    ]
    resources = [aws_efs_file_system.home.arn]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "elasticfilesystem:AccessedViaMountTarget"
      values   = ["true"]
    }
  }
}

resource "aws_efs_file_system_policy" "home" {
  file_system_id = aws_efs_file_system.home.id
  policy         = data.aws_iam_policy_document.efs.json
}
