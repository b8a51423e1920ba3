-- qs_statements: pg_stat_statements' counters without the texts (showtext false: the text file is not read),
-- top-level statements only, per queryid, database and role, with pg_stat_statements_info (evictions, last
-- reset) on every row; one row with NULL counters when no statement is tracked. A row the connected role may not
-- see (another role's, without pg_read_all_stats) has no queryid: those are summed per database and role under
-- queryid 0 (``hidden``). min/max_exec_time tell an entry evicted and re-added (a live entry's minimum never
-- rises, its maximum never falls). Entries are told apart by the database's and role's oids (a database
-- dropped and created again under its name is another); a dropped database or role is named by its oid.
-- {pgss}: the extension's schema.
WITH info AS (
    SELECT dealloc, stats_reset FROM {pgss}.pg_stat_statements_info
),
s AS (
    SELECT COALESCE(s.queryid, 0)                                          AS queryid,
           s.dbid::bigint                                                  AS dbid,
           s.userid::bigint                                                AS userid,
           COALESCE(d.datname::text, '#' || s.dbid::text)                  AS dbname,
           COALESCE(r.rolname::text, '#' || s.userid::text)                AS rolname,
           sum(s.calls)::bigint                                            AS calls,
           sum(s.total_exec_time + s.total_plan_time)::float8              AS total_ms,
           sum(s.rows)::bigint                                             AS rows,
           sum(s.shared_blks_hit)::bigint                                  AS shared_hit,
           sum(s.shared_blks_read)::bigint                                 AS shared_read,
           sum(s.temp_blks_read)::bigint                                   AS temp_read,
           sum(s.temp_blks_written)::bigint                                AS temp_written,
           sum(s.wal_bytes)::bigint                                        AS wal_bytes,
           min(s.min_exec_time)::float8                                    AS min_ms,
           max(s.max_exec_time)::float8                                    AS max_ms,
           bool_or(s.queryid IS NULL)                                      AS hidden
    FROM {pgss}.pg_stat_statements(false) s
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.userid
    WHERE s.toplevel
    GROUP BY 1, 2, 3, 4, 5
)
SELECT info.dealloc::bigint AS dealloc, info.stats_reset, s.*
FROM info LEFT JOIN s ON true
