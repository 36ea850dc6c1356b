"""vpcpeer: Dagster code location for the monitored VPC peering."""
