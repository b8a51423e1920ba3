"""``opsd rehearse``: a migration tried on a restored, quarantined copy of production (docs/rehearse.md)."""
