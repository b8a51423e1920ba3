"use strict";
// Benign: a nullable column without a default (catalog-only change) and an index built CONCURRENTLY,
// which cannot run inside a transaction block, hence `transaction = false`.
module.exports = class AddPickNote1700000000001 {
  name = "AddPickNote1700000000001";
  transaction = false;

  async up(queryRunner) {
    await queryRunner.query(`ALTER TABLE "sc"."stock_movements" ADD COLUMN "pickNote" text`);
    await queryRunner.query(
      `CREATE INDEX CONCURRENTLY "IDX_stock_movements_pickNote" ON "sc"."stock_movements" ("pickNote")`
    );
  }

  async down(queryRunner) {
    // TypeORM 0.3 ignores `transaction = false` on revert: `migration:revert` wraps down() in a
    // transaction unless run with `-t none`, and DROP INDEX CONCURRENTLY is refused inside one.
    const concurrently = queryRunner.isTransactionActive ? "" : " CONCURRENTLY";
    await queryRunner.query(`DROP INDEX${concurrently} "sc"."IDX_stock_movements_pickNote"`);
    await queryRunner.query(`ALTER TABLE "sc"."stock_movements" DROP COLUMN "pickNote"`);
  }
};
