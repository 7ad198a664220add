-- imgpipe catalog, schema version 15: fleet aggregates too costly to
-- compute per page view or scrape (the hosts by age of their last report
-- read every row's last_report), computed by whichever replica finds the
-- stored one too old and kept here, so replicas serve the same figures.

CREATE TABLE fleet_aggregates (
    name         TEXT PRIMARY KEY,
    data         TEXT NOT NULL,
    computed_at  TEXT NOT NULL
);
