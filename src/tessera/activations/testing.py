"""Frames shaped like Tessera's activation tables, for tests and benchmarks of the senders."""

import pandas as pd

from tessera.activations.keys import message_key


def make_messages(
    n: int, day: str = "2025-03-01", channel: str = "email", campaigns: int = 1
) -> pd.DataFrame:
    """``n`` outbound-message rows shaped like activations.outbound_messages."""
    df = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)]})
    df["campaign_id"] = [f"camp{i % campaigns}" for i in range(n)]
    df["channel"] = channel
    df["provider"] = {
        "email": "sendgrid",
        "sms": "twilio",
        "webhook": "webhook",
        "direct_mail": "file",
    }[channel]
    df["as_of_date"] = pd.Timestamp(day)
    df["message_key"] = [
        message_key(c, u, day, channel) for c, u in zip(df.campaign_id, df.customer_id, strict=True)
    ]
    df["address"] = (
        df["customer_id"] + "@example.com"
        if channel == "email"
        else "+49151" + df["customer_id"].str[1:].str.zfill(7)
    )
    df["template_id"] = "d-" + "0" * 32
    df["duration_days"] = 7
    df["personalization"] = '{"first_name":"Ann","offer":"10% off","text":"Hi Ann"}'
    return df
