"""opsd: PostgreSQL backup, recovery and operations daemon."""

__version__ = "0.1.0"
DEFAULT_CONFIG = "/etc/opsd/opsd.toml"
