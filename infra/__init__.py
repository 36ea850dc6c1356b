"""vpcpeer infrastructure: the Pulumi program and the three ways to run it."""
