"use strict";
// Hazardous, on purpose:
//  - a NOT NULL column with a VOLATILE default (clock_timestamp()) rewrites the whole table under an
//    ACCESS EXCLUSIVE lock;
//  - a foreign key added WITHOUT NOT VALID takes SHARE ROW EXCLUSIVE locks on both tables and validates
//    every row in the same transaction.
// Every existing reference column of sc.stock_movements (sku, order_id, po_id) already has a foreign key,
// so a new nullable column "checkedOrderId" referencing sc.orders(id) carries the new one.
// Runs in a transaction (the default).
module.exports = class StampMovements1700000000002 {
  name = "StampMovements1700000000002";

  async up(queryRunner) {
    await queryRunner.query(
      `ALTER TABLE "sc"."stock_movements" ADD COLUMN "checkedAt" timestamptz NOT NULL DEFAULT clock_timestamp()`
    );
    await queryRunner.query(`ALTER TABLE "sc"."stock_movements" ADD COLUMN "checkedOrderId" bigint`);
    await queryRunner.query(
      `ALTER TABLE "sc"."stock_movements" ADD CONSTRAINT "FK_stock_movements_checkedOrderId" ` +
        `FOREIGN KEY ("checkedOrderId") REFERENCES "sc"."orders"("id") ON DELETE NO ACTION ON UPDATE NO ACTION`
    );
  }

  async down(queryRunner) {
    await queryRunner.query(
      `ALTER TABLE "sc"."stock_movements" DROP CONSTRAINT "FK_stock_movements_checkedOrderId"`
    );
    await queryRunner.query(`ALTER TABLE "sc"."stock_movements" DROP COLUMN "checkedOrderId"`);
    await queryRunner.query(`ALTER TABLE "sc"."stock_movements" DROP COLUMN "checkedAt"`);
  }
};
