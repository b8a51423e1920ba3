"""The pure core: units and formatting, schedules and durations, restore-target times, WAL segment names and the
archive's shape. Imports nothing else of opsd (errors, settings and log, at the top level, count as core too)."""
