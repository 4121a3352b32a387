"""Drift metrics: put a finished drift check's metrics to CloudWatch, from outside the VPC."""
