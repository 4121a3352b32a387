"""A pytest plugin (``-p tests.tools.block_unlocked``): the run cannot import what requirements.lock leaves out."""

from tests.tools import unlocked

unlocked.install()
