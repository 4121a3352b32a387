"""The resolver: a stage config (cdk.json) turned into every name, URI and runtime setting the platform uses.

The stacks, CI, the operator CLI, the demo and the local runs all read their names and settings from
here, and nothing else derives them. It imports no CDK: CI's builds and the CLI use it without the
construct library.
"""
