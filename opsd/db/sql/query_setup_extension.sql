-- query_setup_extension: 'opsd setup --query-stats' creates pg_stat_statements in [postgres] dbname, once the
-- library is loaded (shared_preload_libraries, after the restart). In schema public, where it usually is: opsd's
-- sessions run with search_path pg_catalog,pg_temp and would otherwise aim it at pg_catalog. Readers find it
-- through pg_extension, wherever it is.
CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public
