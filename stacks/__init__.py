"""CDK stacks and constructs of the MLOps platform."""
