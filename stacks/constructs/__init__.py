"""Constructs, one per capability; stacks compose them."""
