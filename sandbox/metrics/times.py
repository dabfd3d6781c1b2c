"""Times as Airflow, Docker and Kubernetes write them, read one way for the whole package."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any


def moment(value: Any) -> datetime | None:
    """ISO 8601 / RFC 3339 ("Z" allowed, Docker's nanoseconds too) or epoch seconds, as an aware UTC
    datetime; None for nothing, Docker's zero time ("0001-01-01…") or text that is not a time."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value).strip()
    if text.startswith("0001-"):
        return None
    # Python reads at most microseconds: cut the fraction to six digits, keep the zone.
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", text.replace("Z", "+00:00"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)


def epoch(value: Any) -> float | None:
    parsed = moment(value)
    return parsed.timestamp() if parsed else None


def utc_clock(seconds: float) -> str:
    """Epoch seconds as the time of day people compare with their logs: "05:46:12 UTC"."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%H:%M:%S UTC")
