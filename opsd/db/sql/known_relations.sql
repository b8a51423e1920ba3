-- known_relations: every relation this database's catalog knows (its OID and file node), and the database's
-- OID: to tell which relations the WAL shows dropped are gone for good, and which file nodes belong to other
-- live relations (not worth counting when looking for one table).
SELECT c.oid::bigint AS oid,
       COALESCE(pg_relation_filenode(c.oid), 0)::bigint AS filenode,
       (SELECT oid FROM pg_database WHERE datname = current_database())::bigint AS database
FROM pg_class c
