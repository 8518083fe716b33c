-- Reads of one artist or one live event over a range the engine does not
-- keep in memory (hourly series older than a day with a city or genre, and
-- anything older than 31 days) touch only that artist's or event's cells
-- instead of every cell in the range. Live events are a small share of the
-- cells: their index holds only theirs.
CREATE INDEX kpi_cells_by_artist ON kpi_cells (artist, grain, bucket);
CREATE INDEX kpi_cells_by_live_event ON kpi_cells (live_event, grain, bucket) WHERE live_event <> '';
