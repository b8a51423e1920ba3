"""Use cases. They decide; adapters act. No module here imports plumbum, psycopg or subprocess."""
