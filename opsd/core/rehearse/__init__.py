"""Pure decisions of a migration rehearsal (actions/rehearse/ acts): lock modes and what they block, the copy's
statement log, the hazards and their safer patterns, and the before/after comparisons."""
