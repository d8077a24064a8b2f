-- Landed campaign_responses rows that break a row-level rule (see quarantine_campaign_responses.yml for the rules).
{{ quarantine_rows('base_shop__campaign_responses', 'campaign_responses') }}
