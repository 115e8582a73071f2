"""Cline: import the VS Code extension's tasks as sessions and episodes, and report their usage."""
