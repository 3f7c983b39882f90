"""Disaster-recovery pieces that sit beside the clusters: the in-cluster DR record, the standby marking of model
workloads, the failover routing, and (AWS) the ARC Region switch plan that runs the failover steps DNS does not take
(turnout/dr.py decides what a tier creates)."""
