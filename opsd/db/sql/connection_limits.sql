-- connection_limits: the server's connection limits (when no client is connected besides the probe).
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS reserved
