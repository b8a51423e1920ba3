"""opsd: PostgreSQL backup, recovery and operations daemon."""

__version__ = "0.1.0"
