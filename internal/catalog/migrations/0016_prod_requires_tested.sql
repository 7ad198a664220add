-- imgpipe catalog, schema version 16: prod requires a passing test of the
-- version's exact artifact digest by default (imgpipe test), besides its
-- Succeeded gallery version. A catalog whose prod defaults were removed
-- (no '*' prod rows) is left as its owner set it. A pipeline file's
-- channel "prod" { requires = [...] } block overrides this per promotion.

INSERT INTO channel_requirements (image, channel, kind, state)
SELECT '*', 'prod', 'tested', ''
WHERE EXISTS (SELECT 1 FROM channel_requirements WHERE image = '*' AND channel = 'prod')
  AND NOT EXISTS (SELECT 1 FROM channel_requirements WHERE image = '*' AND channel = 'prod' AND kind = 'tested');
