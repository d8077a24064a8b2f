-- The customer_features columns for every training snapshot date (int_feature_snapshot_dates),
-- computed by the same macro as the daily partition, for a fixed sample of customers when
-- all customers on all dates would exceed var snapshot_max_rows (models need a few million
-- rows, not customers x 52 dates: at 1M customers that would be ~40M rows).
{{ customer_features_as_of(ref('int_feature_snapshot_dates'), ref('int_feature_snapshot_customers')) }}
