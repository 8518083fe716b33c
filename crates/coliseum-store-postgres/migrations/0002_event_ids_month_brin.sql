-- Every append inserts one key per entry into passport_event_ids; a B-tree on
-- `month` doubled the index work of that insert for a column read only by
-- retention, once a month. Keys arrive roughly in time order, so a BRIN index
-- (a few pages, nearly free to maintain) still lets retention find a month's
-- keys without reading the whole table.
DROP INDEX passport_event_ids_month;
CREATE INDEX passport_event_ids_month ON passport_event_ids USING brin (month);
