"""Consolidation: episodes become knowledge. Related episodes are clustered into topics,
entities and relations are extracted into semantic memory, repeated successful tool sequences
become procedural skills, and memories never recalled decay (archived, not deleted)."""
