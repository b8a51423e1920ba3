-- qs_texts: the normalised texts of the given queryids (top-level statements), read only for statements whose
-- text opsd does not have yet: this reads pg_stat_statements' text file. {pgss}: the extension's schema.
SELECT s.queryid,
       s.dbid::bigint                                   AS dbid,
       s.userid::bigint                                 AS userid,
       COALESCE(d.datname::text, '#' || s.dbid::text)   AS dbname,
       COALESCE(r.rolname::text, '#' || s.userid::text) AS rolname,
       s.query
FROM {pgss}.pg_stat_statements(true) s
LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
WHERE s.toplevel AND s.queryid = ANY(%(ids)s::bigint[])
