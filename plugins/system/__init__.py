"""Health, readiness, stats and the plugin and route inventories."""
