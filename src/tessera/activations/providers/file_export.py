"""Direct mail as CSV files for the print house, written atomically under the outbox."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from tessera.activations.providers.base import Message, Provider

CSV_COLUMNS = [
    "message_key",
    "campaign_id",
    "customer_id",
    "as_of_date",
    "template_id",
    "first_name",
    "offer",
    "top_category",
]


class FileExportProvider(Provider):
    """One CSV per batch under ``outbox_dir/direct_mail/<date>/``; the file names are deterministic.

    Exactly once: a file appears only by atomic rename, and ``reconcile`` reads the keys already
    in the folder, so a rerun never exports a key twice.
    """

    name = "file"
    max_batch = 5000

    def __init__(self, outbox_dir: Path | str) -> None:
        self.root = Path(outbox_dir) / "direct_mail"

    def send_batch(self, batch: Sequence[Message]) -> dict[str, str | None]:
        folder = self.root / batch[0].as_of_date
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256("|".join(sorted(m.key for m in batch)).encode()).hexdigest()[:16]
        target = folder / f"direct_mail-{batch[0].as_of_date}-{digest}.csv"
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(CSV_COLUMNS)
        for m in batch:
            writer.writerow(
                [
                    m.key,
                    m.campaign_id,
                    m.customer_id,
                    m.as_of_date,
                    m.template_id,
                    m.data.get("first_name", ""),
                    m.data.get("offer", ""),
                    m.data.get("top_category", ""),
                ]
            )
        tmp = folder / f".{target.name}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return {m.key: target.name for m in batch}

    def reconcile(self, keys: Iterable[str]) -> set[str] | None:
        wanted = set(keys)
        found: set[str] = set()
        for path in self.root.glob("*/direct_mail-*.csv"):
            with open(path, encoding="utf-8", newline="") as fh:
                found.update(row["message_key"] for row in csv.DictReader(fh))
        return wanted & found
