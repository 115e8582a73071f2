"""Built-in plugins: one package per feature, each registered through the host's hooks."""
