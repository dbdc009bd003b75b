environment                = "prod"
region                     = "eu-west-1"
availability_zone_ids      = ["euw1-az1", "euw1-az2", "euw1-az3"]
system_node_instance_types = ["m6i.2xlarge"]
system_node_count          = { min = 3, desired = 3, max = 10 }
gpu_node_instance_types    = ["g5.2xlarge"]
gpu_node_count             = { min = 0, desired = 0, max = 4 }
db_instance_class          = "db.m7g.large"
db_allocated_storage_gb    = 200
db_multi_az                = true
redis_node_type            = "cache.m7g.large"
redis_multi_az             = true
artifact_retention_days    = 365
extra_tags                 = { Owner = "ml-platform", CostCentre = "forecasting" }
