"""Records opsd writes and reads back, typed and versioned (pydantic): job results (``jobs``, ``drill``), check
results (``checks``), health samples and incidents (``health``), runs (``runs``), and the ``--json`` outputs
built from them (``outputs``). The writer and every reader (report, metrics, console, ``--json``) share these
classes, so renaming a field breaks a test, not a report. ``schemas`` lists what docs/schemas/ documents."""
