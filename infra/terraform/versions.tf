terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.95" # the EKS module v20.37 needs >= 5.95, < 6
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State lives in the operator's backend: `terraform init -backend-config=backend.hcl`
  # (an S3 bucket and a DynamoDB lock table made once per account, outside this module).
  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}
