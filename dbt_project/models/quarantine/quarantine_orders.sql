-- Landed orders rows that break a row-level rule (see quarantine_orders.yml for the rules).
{{ quarantine_rows('base_shop__orders', 'orders') }}
