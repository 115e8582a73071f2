"""Mem0 compatibility: Mem0's OSS REST server API and the platform API of ``mem0ai``'s
``MemoryClient``, over mnemogate's memory engine."""
