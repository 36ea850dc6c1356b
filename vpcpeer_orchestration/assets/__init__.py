"""Dagster assets of the vpcpeer lineage graph, one module per part of the graph."""
