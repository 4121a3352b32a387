"""What a deployed model runs (``inference.py``) and what checks a deployed endpoint (``smoke_test.py``)."""
