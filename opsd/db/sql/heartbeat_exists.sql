-- heartbeat_exists: does this database have opsd's marker table?
SELECT to_regclass('opsd.heartbeat') IS NOT NULL AS present
