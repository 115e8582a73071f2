"""Live events over WebSockets: gateway traffic, the activity feed, health and learning."""
