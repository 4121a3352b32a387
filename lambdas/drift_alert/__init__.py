"""Drift alert: start model retraining when a drift alarm fires, within a cooldown."""
