"""Redis for mnemogate instances that serve one deployment together: shared rate-limit buckets,
event fan-out across instances, shared gateway session state. Switched on by
``MNEMOGATE_REDIS_URL``."""
