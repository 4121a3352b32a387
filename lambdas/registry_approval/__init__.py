"""Model registry approval: start the deploy pipeline on approval, notify on rejection."""
