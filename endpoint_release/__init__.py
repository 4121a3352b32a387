"""The endpoint release tool: the one program that changes which model version an endpoint serves.

It is part of the deployed platform, not of the pushed branch: the model-deploy pipeline's builds run
the copy that ``cdk deploy`` published with the platform (stacks/cicd_stack.py), with nothing installed
in the build and nothing read from the repository. It needs only the standard library and boto3, both
in the CodeBuild standard image.

A release changes one thing: the ``ModelPackageArn`` parameter of the target's Endpoint stack, through a
CloudFormation update that reuses the stack's deployed template (``UsePreviousTemplate``) under the
stack's release role, which may only manage that endpoint (stacks/endpoint_stack.py). SageMaker's
blue/green canary does the rollout; when it or anything else fails, CloudFormation rolls the stack
back and the previous version keeps serving.
"""
