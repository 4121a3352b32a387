"""``make demo``: the platform's lifecycle on embedded AWS emulation (see demo/run.py)."""
