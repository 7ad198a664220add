-- imgpipe catalog, schema version 18: the reconciler's rounds in serve are
-- claimed as a catalog job (the leases table of schema 12, shared with the
-- other periodic jobs), so reconcile_rounds (schema 11) goes.

DROP TABLE reconcile_rounds;
