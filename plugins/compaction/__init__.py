"""Context compaction for the gateway: strategies, per-session budgets, auto mode, history."""
