"""Lambda functions, one folder each, packaged as pure-Python assets.

Runtime code here imports boto3, Powertools and its own shared module only:
never aws_cdk or the SageMaker SDK (cold start).
"""
