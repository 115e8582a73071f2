"""Semantic memory: entities (bi-temporal, every update keeps the old version) and weighted
relations, with search and spreading activation that strengthens what fires together."""
