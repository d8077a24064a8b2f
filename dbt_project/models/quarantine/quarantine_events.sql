-- Landed events rows that break a row-level rule (see quarantine_events.yml for the rules).
{{ quarantine_rows('base_shop__events', 'events') }}
