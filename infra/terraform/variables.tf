variable "project" {
  type        = string
  description = "Name prefix of every resource (lowercase letters, digits and dashes)."
  default     = "seqops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.project))
    error_message = "project must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  type        = string
  description = "Deployment stage; part of every name (dev, staging, prod)."

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "region" {
  type        = string
  description = "AWS region to deploy into (set per environment in its tfvars; never hard-coded)."
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR block of the VPC; split into private, public and database subnets over the zones."
  default     = "10.40.0.0/16"
}

variable "availability_zone_ids" {
  type        = list(string)
  description = "Zone IDs (e.g. euw1-az1) to spread subnets, nodes and the shared volume over; IDs name the same zones in every account."

  validation {
    condition     = length(var.availability_zone_ids) >= 2 && length(var.availability_zone_ids) <= 4
    error_message = "use 2 to 4 availability zones."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "EKS control-plane version."
  default     = "1.31"
}

variable "system_node_instance_types" {
  type        = list(string)
  description = "Instance types of the CPU node group (Airflow, MLflow, serving, Feast)."
  default     = ["m6i.xlarge"]
}

variable "system_node_count" {
  type        = object({ min = number, desired = number, max = number })
  description = "Size of the CPU node group."
  default     = { min = 2, desired = 3, max = 6 }
}

variable "gpu_node_instance_types" {
  type        = list(string)
  description = "Instance types of the GPU node group that runs training pods."
  default     = ["g5.xlarge"]
}

variable "gpu_node_count" {
  type        = object({ min = number, desired = number, max = number })
  description = "Size of the GPU node group; min 0 lets it scale to zero between trainings."
  default     = { min = 0, desired = 0, max = 2 }
}

variable "db_instance_class" {
  type        = string
  description = "RDS PostgreSQL instance class (Airflow metadata, MLflow backend, Feast registry and offline store, prediction log)."
  default     = "db.t4g.medium"
}

variable "db_allocated_storage_gb" {
  type        = number
  description = "Initial RDS storage in GiB (autoscaling up to four times this)."
  default     = 50
}

variable "db_multi_az" {
  type        = bool
  description = "Run RDS with a standby in a second zone (on by default; dev turns it off to halve the cost)."
  default     = true
}

variable "redis_node_type" {
  type        = string
  description = "ElastiCache node type (Feast online store, Celery broker)."
  default     = "cache.t4g.small"
}

variable "redis_multi_az" {
  type        = bool
  description = "Keep a Redis replica in a second zone with automatic failover (on by default; dev turns it off)."
  default     = true
}

variable "artifact_retention_days" {
  type        = number
  description = "Days noncurrent versions of objects are kept before expiring."
  default     = 90
}

variable "access_log_retention_days" {
  type        = number
  description = "Days the buckets' server access logs are kept."
  default     = 365
}

variable "serving_namespace" {
  type        = string
  description = "Kubernetes namespace of the platform (its service accounts get the IRSA roles)."
  default     = "seqops"
}

variable "extra_tags" {
  type        = map(string)
  description = "Tags added to every resource (cost centre, owner)."
  default     = {}
}
