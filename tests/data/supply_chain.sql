-- A small supply-chain schema for the targeted recovery tests: orders, purchase orders, stocks and stock
-- movements with foreign keys, a trigger that keeps stock quantities and writes an audit row, and seed data.
CREATE SCHEMA sc;
CREATE TABLE sc.stocks (sku text PRIMARY KEY, qty int NOT NULL DEFAULT 0);
CREATE TABLE sc.orders (id bigserial PRIMARY KEY, customer text NOT NULL, status text NOT NULL DEFAULT 'open',
                        created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sc.purchase_orders (id bigserial PRIMARY KEY, supplier text NOT NULL,
                                 sku text NOT NULL REFERENCES sc.stocks, qty int NOT NULL CHECK (qty > 0),
                                 created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sc.stock_movements (id bigserial PRIMARY KEY, sku text NOT NULL REFERENCES sc.stocks,
                                 order_id bigint REFERENCES sc.orders, po_id bigint REFERENCES sc.purchase_orders,
                                 qty int NOT NULL, moved_at timestamptz NOT NULL DEFAULT now(), note text);
CREATE INDEX ON sc.stock_movements (sku, moved_at);
CREATE TABLE sc.audit (id bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, row_id bigint,
                       at timestamptz NOT NULL DEFAULT now());
CREATE TABLE sc.no_key_log (line text);
INSERT INTO sc.stocks (sku) SELECT 'SKU-' || g FROM generate_series(1, 50) g;
INSERT INTO sc.orders (customer) SELECT 'customer-' || g FROM generate_series(1, 500) g;
INSERT INTO sc.purchase_orders (supplier, sku, qty)
  SELECT 'supplier-' || (g % 7), 'SKU-' || (g % 50 + 1), 100 FROM generate_series(1, 200) g;
INSERT INTO sc.stock_movements (sku, order_id, po_id, qty, note)
  SELECT 'SKU-' || (g % 50 + 1), CASE WHEN g % 2 = 0 THEN g % 500 + 1 END, CASE WHEN g % 2 = 1 THEN g % 200 + 1 END,
         CASE WHEN g % 2 = 0 THEN -(g % 5 + 1) ELSE g % 9 + 1 END, 'seed ' || g
  FROM generate_series(1, 3000) g;
INSERT INTO sc.no_key_log SELECT 'line ' || g FROM generate_series(1, 20) g;
CREATE FUNCTION sc.keep_stock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE sc.stocks SET qty = qty + NEW.qty WHERE sku = NEW.sku;
    INSERT INTO sc.audit (tbl, op, row_id) VALUES (TG_TABLE_NAME, TG_OP, NEW.id);
  ELSE
    UPDATE sc.stocks SET qty = qty - OLD.qty WHERE sku = OLD.sku;
    INSERT INTO sc.audit (tbl, op, row_id) VALUES (TG_TABLE_NAME, TG_OP, OLD.id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER keep_stock AFTER INSERT OR DELETE ON sc.stock_movements
  FOR EACH ROW EXECUTE FUNCTION sc.keep_stock();
