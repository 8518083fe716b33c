-- Row-level security on the tables that hold personal or tenant data, for
-- every path into the database other than the engine's own connection
-- (the table owner, which the policies do not bind): a reporting tool, a
-- support console, Supabase's data API. Such a path connects as (or sets
-- its role to) `coliseum_restricted` and names the Coliseum user it acts
-- for with `SET coliseum.user_id = '<id>'`; it then sees that user's own
-- rows, and the tenant data of the artists and live events linked to it,
-- as the engine's own checks allow. No user set: no rows.

DO $$
BEGIN
    CREATE ROLE coliseum_restricted NOLOGIN;
EXCEPTION
    -- Roles are per cluster: another database's migration may have made it.
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

CREATE FUNCTION coliseum_acting_user() RETURNS BIGINT
LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('coliseum.user_id', true), '')::BIGINT
$$;

CREATE FUNCTION coliseum_linked_artists() RETURNS SETOF TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT artist_id FROM user_artists WHERE user_id = coliseum_acting_user()
$$;

CREATE FUNCTION coliseum_hosted_live_events() RETURNS SETOF TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT live_event_id FROM user_live_events WHERE user_id = coliseum_acting_user()
$$;

-- Personal data: one's own rows only.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_row ON users FOR SELECT TO coliseum_restricted USING (id = coliseum_acting_user());
ALTER TABLE user_artists ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON user_artists FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE user_live_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON user_live_events FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON sessions FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON api_keys FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE stripe_customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON stripe_customers FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY;  -- no policy: no rows
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_actions ON audit_log FOR SELECT TO coliseum_restricted
    USING (actor = 'user:' || coliseum_acting_user()::TEXT);

-- Tenant data: the linked artists' and hosted live events' rows.
ALTER TABLE passport_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON passport_entries FOR SELECT TO coliseum_restricted
    USING (artist_id IN (SELECT coliseum_linked_artists())
           OR live_event_id IN (SELECT coliseum_hosted_live_events()));
ALTER TABLE kpi_cells ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON kpi_cells FOR SELECT TO coliseum_restricted
    USING (artist IN (SELECT coliseum_linked_artists())
           OR live_event IN (SELECT coliseum_hosted_live_events()));
ALTER TABLE fan_days ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_rows ON fan_days FOR SELECT TO coliseum_restricted
    USING (artist IN (SELECT coliseum_linked_artists()));

GRANT SELECT ON users, user_artists, user_live_events, sessions, api_keys, stripe_customers, stripe_events,
    audit_log, passport_entries, kpi_cells, fan_days TO coliseum_restricted;
GRANT EXECUTE ON FUNCTION coliseum_acting_user(), coliseum_linked_artists(), coliseum_hosted_live_events()
    TO coliseum_restricted;

-- The log's monthly partitions are tables of their own: read directly they
-- would sidestep the parent's policies, and some platforms grant new tables
-- to API roles by default. Each gets row-level security without a policy
-- (only the owner reads it) and no grant, now and as months are added.
CREATE OR REPLACE FUNCTION coliseum_ensure_month(month_start DATE) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', month_start)::DATE;
    partition TEXT := 'passport_entries_' || to_char(first_day, 'YYYY_MM');
BEGIN
    IF to_regclass(partition) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I PARTITION OF passport_entries FOR VALUES FROM (%L) TO (%L)',
        partition,
        first_day::TEXT || ' 00:00:00+00',
        (first_day + INTERVAL '1 month')::DATE::TEXT || ' 00:00:00+00');
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition);
    EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', partition);
EXCEPTION
    -- Another node created it at the same moment.
    WHEN duplicate_table OR unique_violation THEN NULL;
END;
$$;

DO $$
DECLARE
    partition TEXT;
BEGIN
    FOR partition IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'passport_entries'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', partition);
        EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', partition);
    END LOOP;
END
$$;
