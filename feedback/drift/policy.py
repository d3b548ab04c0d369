"""What a drift verdict sets off: a retraining request and/or an alert, with the reason."""

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from feedback.drift.settings import DriftSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    retrain: bool
    alert: bool
    reason: str
    new_reviews: int


def decide(verdict: str, share: float, new_reviews: int, settings: DriftSettings) -> Decision:
    """Retrain when drift is broad enough and there is fresh reviewed data to learn from."""
    if verdict != "drift":
        return Decision(False, False, f"verdict is {verdict}", new_reviews)
    alert = settings.alert_on_drift or settings.alert_webhook_url is not None
    if not settings.retrain_on_drift:
        return Decision(False, alert, "retraining on drift is off", new_reviews)
    if share < settings.retrain_min_share:
        why = (
            f"drift share {share:.0%} below the retrain threshold {settings.retrain_min_share:.0%}"
        )
        return Decision(False, alert, why, new_reviews)
    if new_reviews < settings.retrain_min_new_reviews:
        why = (
            f"only {new_reviews} reviewed interactions since the production version "
            f"(need {settings.retrain_min_new_reviews})"
        )
        return Decision(False, alert, why, new_reviews)
    why = f"drift share {share:.0%} and {new_reviews} new reviewed interactions"
    return Decision(True, alert, why, new_reviews)


def send_alert(settings: DriftSettings, payload: dict[str, Any]) -> dict[str, Any]:
    """Log the alert and POST it to the webhook when one is set; report how that went."""
    log.warning(
        "drift on %s: %s (report %s)", payload["alias"], payload["reason"], payload["report_id"]
    )
    if settings.alert_webhook_url is None:
        return {"webhook": None}
    try:
        response = httpx.post(str(settings.alert_webhook_url), json=payload, timeout=10)
        return {"webhook": response.status_code}
    except httpx.HTTPError as exc:
        log.warning("drift alert webhook failed: %s", exc)
        return {"webhook": f"{type(exc).__name__}: {exc}"}
