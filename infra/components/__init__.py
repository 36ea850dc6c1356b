"""ComponentResources of the vpcpeer stack, one module per part of the network."""
