-- DNA mutations (SCORING.md): a change of a domain score of 5 points or more
-- against the last recorded value, found when the engine publishes scores.
-- A history of publications, not of the log: `rebuild` keeps it.
CREATE TABLE dna_mutations (
    id       INTEGER PRIMARY KEY,
    artist   TEXT    NOT NULL,
    domain   TEXT    NOT NULL,
    range    TEXT    NOT NULL,
    old      REAL    NOT NULL,
    new      REAL    NOT NULL,
    at_us    INTEGER NOT NULL
);
CREATE INDEX dna_mutations_at ON dna_mutations (at_us);
