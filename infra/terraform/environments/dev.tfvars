environment             = "dev"
region                  = "eu-west-1"
availability_zone_ids   = ["euw1-az1", "euw1-az2"]
system_node_count       = { min = 2, desired = 2, max = 4 }
gpu_node_count          = { min = 0, desired = 0, max = 1 }
db_instance_class       = "db.t4g.medium"
db_allocated_storage_gb = 20
db_multi_az             = false # no standby in dev
redis_multi_az          = false # no failover replica in dev
extra_tags              = { Owner = "ml-platform" }
