"""A corpus of real shapes: the databases a PostgreSQL 15 application actually has, built on a running cluster
for the drill's verdicts to be proven on (tests/integration/test_real_shapes.py).

Partitioned tables (range, list, hash, default partitions, sub-partitions), inheritance, an unlogged table,
multi-MB TOASTed rows, large objects, matviews populated and WITH NO DATA, every index access method, an invalid
index (a failed CREATE UNIQUE INDEX CONCURRENTLY), a foreign table (postgres_fdw to itself), sequences and
identity columns, generated columns, domains, enums, range and composite types, row-level security, triggers,
a rule, event triggers (one forbids CREATE EXTENSION, as some shops do), a read-only database with amcheck
preinstalled (an old version) in a schema of its own, a LATIN1 / C database, a few hundred small relations, and
names that need quoting.

:func:`build` returns what it built with the **expected** verdict counts per database: by construction for the
objects it creates (each section below adds its own), plus TOAST tables as the catalog says PostgreSQL gave them
(two relations each: the TOAST table and its index, with the verdict of the table they belong to), plus the
system relations of a fresh database, measured right after CREATE DATABASE.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from opsd_sandbox.procs import as_pg, run

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PAGE = 8192
MAIN = "shapes"


@dataclass(frozen=True)
class Expected:
    """One database's expected drill counts: checked, skipped by reason."""

    checked: int
    skipped: dict[str, int]


@dataclass(frozen=True)
class Victim:
    """A relation the corruption step damages: database, relation (as regclass prints it), block."""

    database: str
    relation: str
    block: int = 1


@dataclass(frozen=True)
class Corpus:
    databases: dict[str, Expected]  # every database the corpus made
    refused: list[str]  # databases that refuse connections (template0)
    heap_victim: Victim  # a table without indexes (a damaged heap page breaks nothing else)
    index_victim: Victim  # a B-tree index of a table that is otherwise sound
    large_objects: int
    toast_bytes: int  # bytes stored out of line in shapes.documents


@dataclass
class _Db:
    name: str
    counts: Counter[str] = field(default_factory=Counter)  # "checked" or a skip reason


class Psql:
    def __init__(self, socket_dir: Path, port: int) -> None:
        self.socket_dir, self.port = socket_dir, port

    def _argv(self, db: str) -> list[str]:
        return as_pg([str(PG_BIN / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-d", db, "-X",
                      "-At", "-v", "ON_ERROR_STOP=1"])

    def script(self, db: str, sql: str, *, check: bool = True) -> str:
        """Run ``sql`` statement by statement (autocommit: CONCURRENTLY works), as postgres, in UTF8."""
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False, encoding="utf-8") as f:
            f.write(sql)
        os.chmod(f.name, 0o644)
        try:
            res = run([*self._argv(db), "-f", f.name], env={"PGCLIENTENCODING": "UTF8"}, check=check, timeout=300)
        finally:
            os.unlink(f.name)
        return res.stdout.strip()

    def value(self, db: str, sql: str) -> str:
        return run([*self._argv(db), "-c", sql], env={"PGCLIENTENCODING": "UTF8"}).stdout.strip()


_BASELINE = ("SELECT count(*) FILTER (WHERE relkind IN ('r', 't', 'i', 'S')) || ' ' || "
             "count(*) FILTER (WHERE relkind IN ('v', 'c', 'p', 'I')) FROM pg_class WHERE relpersistence <> 't'")
_TOAST = ("SELECT v || ' ' || count(*) FROM (SELECT CASE WHEN o.relpersistence = 'u' THEN 'unlogged' "
          "WHEN NOT o.relispopulated THEN 'not_populated' ELSE 'checked' END AS v FROM pg_class o "
          "JOIN pg_namespace n ON n.oid = o.relnamespace WHERE o.reltoastrelid <> 0 "
          "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')) t GROUP BY v")


def _create(p: Psql, name: str, options: str = "") -> _Db:
    p.script("postgres", f'CREATE DATABASE "{name}" {options};')
    checked, no_storage = (int(x) for x in p.value(name, _BASELINE).split())
    db = _Db(name)
    db.counts.update({"checked": checked, "no_storage": no_storage})
    return db


def _finish(p: Psql, db: _Db) -> Expected:
    for line in filter(None, p.value(db.name, _TOAST).splitlines()):
        verdict, n = line.split()
        db.counts[verdict] += 2 * int(n)  # the TOAST table and its index
    skipped = {k: v for k, v in db.counts.items() if k != "checked" and v}
    return Expected(checked=db.counts["checked"], skipped=dict(sorted(skipped.items())))


# --------------------------------------------------------------------------- the main database, by section
TYPES = """
CREATE EXTENSION postgres_fdw;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN price AS numeric(12, 2) CHECK (VALUE >= 0);
CREATE TYPE floatrange AS RANGE (subtype = float8);
CREATE TYPE address AS (street text, city text);
"""

PARTITIONS = """
CREATE TABLE sales (id bigint, sold_on date, amount price, PRIMARY KEY (id, sold_on)) PARTITION BY RANGE (sold_on);
CREATE TABLE sales_2024 PARTITION OF sales FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE sales_2025 PARTITION OF sales FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales_default PARTITION OF sales DEFAULT;
INSERT INTO sales SELECT g, date '2024-06-01' + g, g FROM generate_series(1, 900) g;
CREATE TABLE regions (id int, region text, note text) PARTITION BY LIST (region);
CREATE TABLE regions_eu PARTITION OF regions FOR VALUES IN ('eu') PARTITION BY HASH (id);
CREATE TABLE regions_eu_0 PARTITION OF regions_eu FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE regions_eu_1 PARTITION OF regions_eu FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE regions_us PARTITION OF regions FOR VALUES IN ('us');
CREATE TABLE regions_other PARTITION OF regions DEFAULT;
INSERT INTO regions SELECT g, (ARRAY['eu', 'us', 'apac'])[g % 3 + 1], 'n' || g FROM generate_series(1, 600) g;
CREATE TABLE events (id int, payload jsonb) PARTITION BY HASH (id);
CREATE TABLE events_0 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE events_1 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE events_2 PARTITION OF events FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO events SELECT g, jsonb_build_object('n', g) FROM generate_series(1, 300) g;
CREATE TABLE vehicles (id int, maker text);
CREATE TABLE cars (doors int) INHERITS (vehicles);
CREATE TABLE trucks (axles int) INHERITS (vehicles);
INSERT INTO vehicles VALUES (1, 'generic');
INSERT INTO cars VALUES (2, 'sedan co', 4);
INSERT INTO trucks VALUES (3, 'haulers', 3);
"""
# partitions: sales 3 leaves + 3 leaf indexes; regions 4 leaves; events 3 leaves; inheritance 3 tables
# no storage: sales (p) and its key (I), regions and regions_eu (p), events (p); the composite type address (c)

DATA = """
CREATE UNLOGGED TABLE sessions_cache (token text PRIMARY KEY, data jsonb);
INSERT INTO sessions_cache SELECT md5(g::text), '{}' FROM generate_series(1, 100) g;
CREATE TABLE documents (id int PRIMARY KEY, body text, blob bytea);
INSERT INTO documents
SELECT g, (SELECT string_agg(md5(g || ':' || x), '') FROM generate_series(1, 25000 * g) x),
       (SELECT decode(string_agg(md5(x || '/' || g), ''), 'hex') FROM generate_series(1, 40000 * g) x)
FROM generate_series(1, 2) g;
SELECT lo_from_bytea(0, (SELECT decode(string_agg(md5(x::text), ''), 'hex') FROM generate_series(1, 20000) x));
SELECT lo_from_bytea(0, convert_to('a small large object', 'UTF8'));
CREATE MATERIALIZED VIEW mv_sales AS SELECT sold_on, sum(amount) AS total FROM sales GROUP BY sold_on;
CREATE UNIQUE INDEX mv_sales_day ON mv_sales (sold_on);
CREATE MATERIALIZED VIEW mv_nodata AS SELECT id, maker FROM vehicles WITH NO DATA;
CREATE INDEX mv_nodata_id ON mv_nodata (id);
"""

INDEXES = """
CREATE TABLE things (id int PRIMARY KEY, name text, tags int[], span int4range, pos point, created timestamptz,
                     qty int, feeling mood, band floatrange, addr address);
CREATE INDEX things_partial ON things (qty) WHERE qty > 0;
CREATE INDEX things_expr ON things (lower(name));
CREATE INDEX things_covering ON things (name) INCLUDE (qty);
CREATE INDEX things_hash ON things USING hash (name);
CREATE INDEX things_gin ON things USING gin (tags);
CREATE INDEX things_gist ON things USING gist (span);
CREATE INDEX things_spgist ON things USING spgist (pos);
CREATE INDEX things_brin ON things USING brin (created);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.qty := coalesce(NEW.qty, 0); RETURN NEW; END$$;
CREATE TRIGGER things_touch BEFORE INSERT OR UPDATE ON things FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO things
SELECT g, 'thing ' || g, ARRAY[g, g % 7], int4range(g, g + 10), point(g, g % 13), now() - g * interval '1 hour',
       g % 5, (ARRAY['sad', 'ok', 'happy'])[g % 3 + 1]::mood, floatrange(g, g + 0.5),
       ROW('street ' || g, 'city')::address
FROM generate_series(1, 2000) g;
CREATE TABLE dupes (v int);
INSERT INTO dupes VALUES (1), (1), (2);
"""
# things: the table, its key, partial, expression and covering B-trees are checked; hash, gin, gist, spgist and
# brin are indexes amcheck cannot check on 15
FAILED_CIC = "CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v);"  # fails on the duplicates: invalid

FOREIGN = """
CREATE SERVER loopback FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{socket}', port '{port}', dbname '{db}');
CREATE USER MAPPING FOR postgres SERVER loopback OPTIONS (user 'postgres');
CREATE FOREIGN TABLE remote_things (id int, name text) SERVER loopback OPTIONS (table_name 'things');
"""

APP = """
CREATE SEQUENCE invoice_seq;
SELECT nextval('invoice_seq');
CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                      code text GENERATED ALWAYS AS ('T-' || id) STORED,
                      owner_name text DEFAULT current_user, status mood NOT NULL DEFAULT 'ok', cost price,
                      during tstzrange);
ALTER TABLE tickets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tickets_own ON tickets USING (owner_name = current_user);
INSERT INTO tickets (cost, during) SELECT g, tstzrange(now(), now() + interval '1 day') FROM generate_series(1, 50) g;
CREATE TABLE legacy (id serial PRIMARY KEY, note text);
CREATE VIEW legacy_v AS SELECT id, note FROM legacy;
CREATE RULE legacy_v_ins AS ON INSERT TO legacy_v DO INSTEAD INSERT INTO legacy (note) VALUES (NEW.note);
INSERT INTO legacy_v (note) SELECT 'n' || g FROM generate_series(1, 20) g;
CREATE FUNCTION ddl_note() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN RAISE NOTICE 'ddl: %', tg_tag; END$$;
CREATE EVENT TRIGGER ddl_note ON ddl_command_end EXECUTE FUNCTION ddl_note();
CREATE FUNCTION no_extensions() RETURNS event_trigger LANGUAGE plpgsql
AS $$BEGIN RAISE EXCEPTION 'extensions are managed by the platform team (%)', tg_tag; END$$;
CREATE EVENT TRIGGER no_extensions ON ddl_command_start WHEN TAG IN ('CREATE EXTENSION', 'ALTER EXTENSION')
EXECUTE FUNCTION no_extensions();
"""
# invoice_seq; tickets, its key and its identity sequence; legacy, its key and its serial; legacy_v has no storage

QUOTED = """
CREATE SCHEMA "Inventory";
CREATE TABLE "Inventory"."StockMovements" ("id" serial PRIMARY KEY, "stockId" int NOT NULL,
                                           "movementDate" timestamptz NOT NULL DEFAULT now(), "quantity" int NOT NULL);
CREATE INDEX "IDX_stockId_movementDate" ON "Inventory"."StockMovements" ("stockId", "movementDate");
INSERT INTO "Inventory"."StockMovements" ("stockId", "quantity") SELECT g % 20, g FROM generate_series(1, 500) g;
CREATE TABLE "order items" ("line no" int PRIMARY KEY, "item.name" text);
INSERT INTO "order items" VALUES (1, 'widget'), (2, 'gadget');
CREATE TABLE "v1.2 archive" (id int PRIMARY KEY);
CREATE TABLE "it's \"\"quoted\"\"\" (id int PRIMARY KEY);
CREATE TABLE U&"r\\00E9sum\\00E9s" (U&"pr\\00E9nom" text, id int PRIMARY KEY);
INSERT INTO U&"r\\00E9sum\\00E9s" VALUES (U&'Ren\\00E9e', 1);
CREATE SCHEMA many;
DO $$BEGIN
  FOR i IN 1..{many} LOOP
    EXECUTE format('CREATE TABLE many.t%s (id int PRIMARY KEY, n int)', i);
    EXECUTE format('INSERT INTO many.t%s VALUES (1, %s)', i, i);
  END LOOP;
END$$;
"""
MANY = 150

LATIN1 = """
CREATE TABLE U&"caf\\00E9" (id int PRIMARY KEY, U&"cr\\00E8me" text);
CREATE INDEX ON U&"caf\\00E9" (U&"cr\\00E8me");
INSERT INTO U&"caf\\00E9" SELECT g, U&'br\\00FBl\\00E9e ' || g FROM generate_series(1, 200) g;
"""

VICTIMS = """
CREATE TABLE ledger (id int, amount int, memo text);
INSERT INTO ledger SELECT g, g, repeat('m', 100) FROM generate_series(1, 2000) g;
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts SELECT g, g FROM generate_series(1, 5000) g;
CREATE TABLE placed (id int, note text) {tablespace};
CREATE INDEX placed_id ON placed (id) {tablespace};
INSERT INTO placed SELECT g, 'p' || g FROM generate_series(1, 100) g;
"""


def _main(p: Psql, tablespace: str | None) -> _Db:
    db = _create(p, MAIN)
    p.script(MAIN, TYPES + PARTITIONS)
    db.counts.update({"checked": 6 + 4 + 3 + 3, "no_storage": 2 + 2 + 1 + 1})
    p.script(MAIN, DATA)
    db.counts.update({"unlogged": 2, "checked": 2 + 2, "not_populated": 2})  # documents, mv_sales (+ indexes)
    p.script(MAIN, INDEXES)
    db.counts.update({"checked": 5 + 1, "access_method": 5})  # things (5), dupes
    p.script(MAIN, FAILED_CIC, check=False)
    db.counts.update({"invalid_index": 1})
    p.script(MAIN, FOREIGN.format(socket=p.socket_dir, port=p.port, db=MAIN))
    db.counts.update({"foreign_table": 1})
    p.script(MAIN, APP)
    db.counts.update({"checked": 1 + 3 + 3, "no_storage": 1})
    p.script(MAIN, QUOTED.format(many=MANY))
    db.counts.update({"checked": 4 + 2 + 2 + 2 + 2 + 2 * MANY})
    ts = f'TABLESPACE "{tablespace}"' if tablespace else ""
    p.script(MAIN, VICTIMS.format(tablespace=ts))
    db.counts.update({"checked": 1 + 2 + 2})  # ledger; accounts and its key; placed and its index
    p.script(MAIN, "CHECKPOINT;")
    return db


def build(socket_dir: Path, port: int, *, tablespace: str | None = None) -> Corpus:
    """Build the corpus on the cluster at ``socket_dir``/``port`` (as postgres); ``tablespace``: an existing
    tablespace to put one table (``shapes.placed``) and its index in."""
    p = Psql(socket_dir, port)
    main = _main(p, tablespace)
    # a reporting database: read-only by default, with amcheck of an old version (no verify_heapam) in its own
    # schema, as many shops install it
    ro = _create(p, "shapes_reports")
    p.script(ro.name, "CREATE SCHEMA tools; CREATE EXTENSION amcheck VERSION '1.0' SCHEMA tools;"
                      "CREATE TABLE reports (id int PRIMARY KEY, body text);"
                      "INSERT INTO reports SELECT g, 'r' || g FROM generate_series(1, 100) g;")
    p.script("postgres", f'ALTER DATABASE "{ro.name}" SET default_transaction_read_only = on;')
    ro.counts.update({"checked": 2})
    latin = _create(p, "shapes_latin1", "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    p.script(latin.name, LATIN1)
    latin.counts.update({"checked": 3})
    dbs = {d.name: _finish(p, d) for d in (main, ro, latin)}
    toast = int(p.value(MAIN, "SELECT sum(octet_length(body) + octet_length(blob)) FROM documents"))
    los = int(p.value(MAIN, "SELECT count(*) FROM pg_largeobject_metadata"))
    return Corpus(databases=dbs, refused=["template0"], heap_victim=Victim(MAIN, "ledger"),
                  index_victim=Victim(MAIN, "accounts_pkey"), large_objects=los, toast_bytes=toast)


def file_of(socket_dir: Path, port: int, victim: Victim) -> str:
    """The victim's file, relative to the data directory (read while the cluster runs)."""
    return Psql(socket_dir, port).value(victim.database, f"SELECT pg_relation_filepath('{victim.relation}')")


def overwrite_page(pgdata: Path, relfile: str, block: int) -> None:
    """Overwrite one 8 kB page of a relation's file with garbage (the cluster must be stopped): its header is no
    longer valid, so any read of that block fails as data corruption (XX001), naming the block."""
    path = pgdata / relfile
    assert path.stat().st_size >= (block + 1) * PAGE, f"{path} has no block {block}"
    with path.open("r+b") as f:
        f.seek(block * PAGE)
        f.write(bytes((i * 131 + 7) % 251 for i in range(PAGE)))
