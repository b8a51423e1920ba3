-- rehearse_now: the server's clock, before a rehearsal's command starts (its sessions start after it).
SELECT pg_catalog.now() AS at
