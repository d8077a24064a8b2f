-- Landed customers rows that break a row-level rule (see quarantine_customers.yml for the rules).
{{ quarantine_rows('base_shop__customers', 'customers') }}
