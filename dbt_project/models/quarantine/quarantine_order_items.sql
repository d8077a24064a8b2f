-- Landed order_items rows that break a row-level rule (see quarantine_order_items.yml for the rules).
{{ quarantine_rows('base_shop__order_items', 'order_items') }}
