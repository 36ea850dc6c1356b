"""Asset groups and owners: jobs select by group, so a renamed asset cannot empty a job."""

ANALYZER_GROUP = "analyzer"
NETWORK_GROUP = "network"
TRAFFIC_GROUP = "traffic"
OWNERS = ["team:network-security"]
