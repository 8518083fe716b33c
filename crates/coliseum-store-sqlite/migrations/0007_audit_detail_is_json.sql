-- An audit record's detail is a JSON object, as on PostgreSQL (jsonb): a
-- record the log cannot hold fails the action it records, on both backends.
CREATE TRIGGER audit_log_detail_is_json BEFORE INSERT ON audit_log
WHEN NOT json_valid(NEW.detail)
BEGIN
    SELECT RAISE(ABORT, 'an audit record''s detail must be JSON');
END;
