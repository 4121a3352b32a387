"""Model-quality metrics: put a finished quality check's metrics to CloudWatch, from outside the VPC."""
