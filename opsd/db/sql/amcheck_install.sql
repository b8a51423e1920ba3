-- amcheck_install: the extension, in the scratch copy only (a drill never runs this on production).
CREATE EXTENSION IF NOT EXISTS amcheck
