"""Sessions group a conversation's gateway requests; every request is logged with its usage."""
