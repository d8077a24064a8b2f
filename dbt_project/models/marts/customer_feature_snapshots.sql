-- The customer_features columns for every training snapshot date (int_feature_snapshot_dates),
-- computed by the same macro as the daily partition.
{{ customer_features_as_of(ref('int_feature_snapshot_dates')) }}
