"""Targeted recovery: targets found in the WAL (a restore point, a transaction's commit) and tables restored
beside the live ones, built from the restore plan, the WAL reader and the drill's scratch instance."""
