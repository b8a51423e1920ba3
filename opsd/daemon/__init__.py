"""The daemon: lifecycle (signals set flags), scheduler wiring, job wrappers."""
