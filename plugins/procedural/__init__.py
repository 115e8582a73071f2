"""Procedural memory: skills (how to do things) with their execution record, matched to tasks by
similarity and success rate."""
