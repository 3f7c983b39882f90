"""Pulumi ComponentResources that turn turnout's plans into resources."""
