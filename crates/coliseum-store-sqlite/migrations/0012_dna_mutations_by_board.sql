-- The movers read the mutations of one domain and range over a week: an
-- index on the time alone made them read every domain's and range's.
CREATE INDEX dna_mutations_board ON dna_mutations (domain, range, at_us);
DROP INDEX dna_mutations_at;
