"""Seeded generators of realistic raw datasets for the model-build pipeline.

Each generator writes the raw zone's layout (``<dataset>/dt=YYYY-MM-DD/part-NNNNN.<ext>``)
and can inject covariate and concept drift, so the pipeline, its data contract and
drift detection can be exercised end to end without real data.
"""
