-- known_relations: every relation OID this database's catalog knows, and the database's OID (to tell which
-- relations the WAL shows dropped are gone for good).
SELECT c.oid::bigint AS oid, (SELECT oid FROM pg_database WHERE datname = current_database())::bigint AS database
FROM pg_class c
