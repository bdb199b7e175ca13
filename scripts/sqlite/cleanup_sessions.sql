-- dbguard: dialect=sqlite
-- SQLite: nightly cleanup of the web front-end's local session/cache store.
-- Removes expired sessions and stale cache entries, marks idle sessions, and
-- makes sure the expiry lookup is indexed. Safe to re-run.

CREATE INDEX IF NOT EXISTS sessions_expires_at_idx ON sessions (expires_at);

DELETE FROM sessions
WHERE expires_at < strftime('%s', 'now');

DELETE FROM cache_entries
WHERE created_at < strftime('%s', 'now', '-7 days');

UPDATE sessions
SET is_idle = 1
WHERE is_idle = 0
  AND last_seen_at < strftime('%s', 'now', '-30 minutes');
