-- Display names (PASSPORT.md): an artist's or live event's newest name by
-- entry timestamp (ties: the higher seq), a city's or genre's first spelling
-- in the log. Derived from the log like the rollups: written with each
-- processed batch, emptied and recomputed by `coliseum rebuild`.
-- kind: 0 artist, 1 live event, 2 city, 3 genre; id: the artist's or live
-- event's id, the city's or genre's normalized key.
CREATE TABLE display_names (
    kind  INTEGER NOT NULL,
    id    TEXT    NOT NULL,
    name  TEXT    NOT NULL,
    at_us INTEGER NOT NULL,
    seq   INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
