// TypeORM 0.3 data source for the opsd rehearse integration tests (plain CommonJS, no compile step).
// Connection settings come ONLY from the standard libpq environment: PGHOST (a host name or a Unix
// socket directory), PGPORT, PGUSER, PGDATABASE and, optionally, PGPASSWORD.
"use strict";
const { DataSource } = require("typeorm");

const env = process.env;
const options = {
  type: "postgres",
  host: env.PGHOST || "/var/run/postgresql",
  port: env.PGPORT ? parseInt(env.PGPORT, 10) : 5432,
  username: env.PGUSER,
  database: env.PGDATABASE,
  migrations: [__dirname + "/migrations/*.js"],
  migrationsTransactionMode: "each",
  synchronize: false,
  logging: false,
};
if (env.PGPASSWORD !== undefined && env.PGPASSWORD !== "") {
  options.password = env.PGPASSWORD;
}

const ds = new DataSource(options);

module.exports = { default: ds };
