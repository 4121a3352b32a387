"""Run a pipeline definition on this machine: the same steps, scripts and conditions as in SageMaker."""
