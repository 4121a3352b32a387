"""Quality start: a scheduled model-quality check starts with the served version's evaluation metric."""
