"""What the people who run Tessera need: alerts on failed runs, freshness of the daily assets."""
