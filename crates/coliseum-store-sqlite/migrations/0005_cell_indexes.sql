-- Reads of one live event over a range the engine does not keep in memory
-- (hourly series older than a day, a city or genre with it, anything older
-- than 31 days) touch only that event's cells instead of every cell in the
-- range. Live events are a small share of the cells, and the index holds
-- only theirs. (An index by artist served artists' reads likewise, but its
-- inserts, spread over every artist, halved processing throughput.)
CREATE INDEX kpi_cells_by_live_event ON kpi_cells (live_event, grain, bucket) WHERE live_event <> '';
