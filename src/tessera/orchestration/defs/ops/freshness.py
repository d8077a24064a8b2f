"""Which daily assets have a freshness check (keys only: the job module imports this)."""

import dagster as dg

#: By this time (TESSERA_TIMEZONE) today's campaign date must be built: the schedule starts at
#: 06:00 and a day takes minutes, so 09:00 leaves room for a retry before marketing looks.
FRESHNESS_DEADLINE_CRON = "0 9 * * *"
#: The daily assets whose freshness is checked: scores, segments, the matrix, the messages.
FRESH_DAILY_ASSETS = (
    dg.AssetKey(["ml", "customer_scores"]),
    dg.AssetKey(["segments", "segment_membership"]),
    dg.AssetKey(["campaigns", "campaign_assignments"]),
    dg.AssetKey(["activations", "outbound_messages"]),
)
#: Dagster's name for the checks build_time_partition_freshness_checks makes.
FRESHNESS_CHECK_KEYS = tuple(dg.AssetCheckKey(key, "freshness_check") for key in FRESH_DAILY_ASSETS)
