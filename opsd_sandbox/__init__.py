"""A local sandbox of the real stack: PostgreSQL 15, pgBackRest 2.45 and a TLS S3 endpoint.

Used by the test suite's fixtures and by the README's demo (``python -m opsd_sandbox demo``).
Not part of a production install's behaviour: nothing in ``opsd`` imports it.
"""

from opsd_sandbox.stack import Sandbox

__all__ = ["Sandbox"]
