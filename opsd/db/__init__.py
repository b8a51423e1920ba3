"""Database access: connection factory and SQL loaded from sql/*.sql by name."""
