"""Message content per campaign and channel (template id, offer, text), adapted from the catalog."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

CHANNELS = ("email", "sms", "webhook", "direct_mail")

#: Used when the catalog gives a channel no text (SMS, push webhook); placeholders are the
#: personalization fields.
DEFAULT_TEXT = "Hi {first_name}, {offer} on {top_category}. Reply STOP to opt out."


@dataclass(frozen=True)
class ChannelContent:
    """What one campaign sends on one channel."""

    campaign_id: str
    channel: str
    template_id: str
    offer: str = ""
    text: str = DEFAULT_TEXT


CONTENT_COLUMNS = ["campaign_id", "channel", "template_id", "offer", "text"]


def content_frame(items: Iterable[ChannelContent]) -> pd.DataFrame:
    """The content as a frame keyed by (campaign_id, channel)."""
    rows = [(c.campaign_id, c.channel, c.template_id, c.offer or "", c.text) for c in items]
    return pd.DataFrame(rows, columns=CONTENT_COLUMNS).drop_duplicates(["campaign_id", "channel"])


def default_template_id(campaign_id: str, channel: str) -> str:
    """A stable placeholder template id for campaigns whose catalog entry names none.

    E-mail placeholders are shaped like SendGrid dynamic template ids (``d-`` + 32 hex
    digits), so the strict local sink takes them; a real account rejects them as unknown.
    """
    name = f"tessera-{campaign_id}-{channel}"
    if channel == "email":
        return "d-" + hashlib.sha256(name.encode()).hexdigest()[:32]
    return name


def _get(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def content_from_catalog(catalog: Any, environment: str = "default") -> list[ChannelContent]:
    """Read template ids, offers and texts from a loaded campaign catalog.

    Duck-typed on purpose (the catalog's pydantic models live in ``campaigns``): a catalog has
    ``campaigns`` (a list, or a mapping by id); a campaign has ``id``/``campaign_id``,
    ``channels`` and ``templates`` (channel -> template id string, or an object/mapping with
    ``template_id``, ``offer``, ``text``) and optionally ``offer``. A catalog with
    ``provider_template_id`` maps template names to the channel provider's ids for
    ``environment`` (the catalog's ``templates`` section).
    """
    from tessera.activations.outbound import DEFAULT_CHANNEL_PROVIDERS

    resolve = getattr(catalog, "provider_template_id", None)
    campaigns = _get(catalog, "campaigns") or []
    if isinstance(campaigns, Mapping):
        campaigns = [
            c if _get(c, "id", "campaign_id") else {**dict(c), "id": k}
            for k, c in campaigns.items()
        ]
    out: list[ChannelContent] = []
    for campaign in campaigns:
        cid = str(_get(campaign, "id", "campaign_id"))
        offer = _get(campaign, "offer") or ""
        if not isinstance(offer, str):
            offer = str(_get(offer, "text", "name", "description") or offer)
        templates = _get(campaign, "templates", "template") or {}
        channels = list(_get(campaign, "channels") or []) or list(templates) or ["email"]
        for channel in channels:
            channel = str(_get(channel, "value") or channel)
            spec = templates.get(channel) if isinstance(templates, Mapping) else None
            if spec is None:
                template_id, ch_offer, text = default_template_id(cid, channel), offer, None
            elif isinstance(spec, str):
                template_id, ch_offer, text = spec, offer, None
            else:
                template_id = str(
                    _get(spec, "template_id", "id") or default_template_id(cid, channel)
                )
                ch_offer = _get(spec, "offer") or offer
                text = _get(spec, "text", "body")
            if callable(resolve):
                provider = DEFAULT_CHANNEL_PROVIDERS.get(channel, channel)
                template_id = resolve(template_id, provider, environment)
            out.append(
                ChannelContent(cid, channel, template_id, str(ch_offer or ""), text or DEFAULT_TEXT)
            )
    return out


def fill_missing_content(content: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Content for every (campaign_id, channel) in ``pairs``; missing ones get placeholders."""
    merged = (
        pairs[["campaign_id", "channel"]]
        .drop_duplicates()
        .merge(content, on=["campaign_id", "channel"], how="left")
    )
    missing = merged["template_id"].isna()
    if missing.any():
        log.warning(
            "no catalog content for %s; using placeholder templates",
            ", ".join(
                sorted(merged.loc[missing, "campaign_id"] + "/" + merged.loc[missing, "channel"])
            ),
        )
        merged.loc[missing, "template_id"] = [
            default_template_id(c, ch)
            for c, ch in zip(
                merged.loc[missing, "campaign_id"], merged.loc[missing, "channel"], strict=True
            )
        ]
    merged["offer"] = merged["offer"].fillna("")
    merged["text"] = merged["text"].fillna(DEFAULT_TEXT)
    return merged[CONTENT_COLUMNS]
