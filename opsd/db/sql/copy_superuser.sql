-- copy_superuser: the bootstrap superuser of a copy of production (the role initdb made, OID 10). opsd connects
-- to its private copies as that role (their hba allows only their private socket), whatever role it uses in
-- production: cutting the copy off (subscriptions, slots, user mappings) and amcheck need a superuser.
SELECT r.rolname::text AS name
FROM pg_catalog.pg_roles r
WHERE r.oid = 10
