"""A sending process for the kill test: sends N emails to the sink, ledger in a DuckDB file."""

import json
import sys

import duckdb
import pandas as pd

from tessera.activations.keys import message_key
from tessera.activations.providers.sendgrid_email import SendGridProvider
from tessera.activations.sender import RetryPolicy, send_messages


def main(db: str, sink_url: str, n: int, window: int) -> None:
    day = "2025-03-01"
    df = pd.DataFrame({"customer_id": [f"c{i:06d}" for i in range(n)]})
    df["campaign_id"] = [f"camp{i % 4}" for i in range(n)]
    df["channel"], df["provider"], df["as_of_date"] = "email", "sendgrid", pd.Timestamp(day)
    df["message_key"] = [
        message_key(c, u, day, "email") for c, u in zip(df.campaign_id, df.customer_id, strict=True)
    ]
    df["address"] = df.customer_id + "@example.com"
    df["template_id"], df["duration_days"], df["personalization"] = (
        "d-" + "1" * 32,
        7,
        '{"first_name":"A"}',
    )
    provider = SendGridProvider(
        "SG.kill-test.key", "news@shop.example", host=sink_url, sink_url=sink_url
    )
    with duckdb.connect(db) as con:
        report = send_messages(
            con,
            df,
            {"sendgrid": provider},
            RetryPolicy(base_delay_s=0.01),
            workers=2,
            window_messages=window,
        )
    print(
        json.dumps(
            {
                "sent": report.sent,
                "reconciled": report.reconciled_sent,
                "resend": report.reconciled_resend,
                "already": report.already_sent,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
