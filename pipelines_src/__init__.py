"""SageMaker model-build pipeline: the definition (a pure function of config) and the step scripts.

Step scripts under steps/ run inside SageMaker framework containers; they use the
container's libraries and the standard library only, and expose importable functions
behind a thin argparse main().
"""
