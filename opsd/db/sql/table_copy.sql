-- table_copy: {target} shaped like {source}: constraints (CHECK, NOT NULL), indexes and comments; no defaults,
-- identity or generation expressions (the copy must not point at live sequences or run anything), and LIKE
-- never copies foreign keys or triggers.
CREATE TABLE {target} (LIKE {source} INCLUDING ALL EXCLUDING DEFAULTS EXCLUDING IDENTITY EXCLUDING GENERATED)
