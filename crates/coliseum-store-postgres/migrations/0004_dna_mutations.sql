-- DNA mutations (SCORING.md): a change of a domain score of 5 points or more
-- against the last recorded value, found when the engine publishes scores.
-- A history of publications, not of the log: `rebuild` keeps it.
CREATE TABLE dna_mutations (
    id      bigserial PRIMARY KEY,
    artist  text COLLATE "C" NOT NULL,
    domain  text NOT NULL,
    range   text NOT NULL,
    old     double precision NOT NULL,
    new     double precision NOT NULL,
    at      timestamptz NOT NULL
);
CREATE INDEX dna_mutations_at ON dna_mutations (at);
