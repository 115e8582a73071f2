"""Episodic memory: what happened (episodes with time, session, actor, outcome, importance),
recalled by similarity, recency and importance."""
