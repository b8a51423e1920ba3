-- drill_session: opsd's own sessions on the scratch copy write what verification needs (amcheck's extension)
-- even in a database set to default_transaction_read_only = on; the copy is disposable, production untouched.
SET default_transaction_read_only = off;
