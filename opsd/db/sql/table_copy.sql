-- table_copy: {target} shaped like {source}: columns, NOT NULL and CHECK constraints, indexes (the primary key
-- too), storage and comments; no defaults, identity or generation expressions (the copy must not point at live
-- sequences or run anything on insert) and no extended statistics; LIKE never copies foreign keys, triggers,
-- policies or grants. Run as the role that will own the copy (SET LOCAL ROLE): CHECKs and index expressions
-- evaluated while it is filled run with that role's rights.
CREATE TABLE {target} (LIKE {source} INCLUDING ALL EXCLUDING DEFAULTS EXCLUDING IDENTITY EXCLUDING GENERATED
                       EXCLUDING STATISTICS)
