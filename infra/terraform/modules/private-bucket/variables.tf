variable "name" {
  type        = string
  description = "Globally unique bucket name."
}

variable "purpose" {
  type        = string
  description = "What the bucket holds (its Purpose tag)."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the KMS key that encrypts every object (SSE-KMS with a bucket key)."
}

variable "access_log_bucket" {
  type        = string
  description = "Name of the bucket that receives this bucket's server access logs (under <name>/)."
}

variable "noncurrent_retention_days" {
  type        = number
  description = "Days a noncurrent object version is kept before it expires."
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete a bucket that still holds objects (never in prod)."
  default     = false
}
