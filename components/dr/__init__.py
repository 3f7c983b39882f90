"""Disaster-recovery pieces that sit beside the clusters: the in-cluster DR record and the standby
marking of model workloads (turnout/dr.py decides what a tier creates)."""
