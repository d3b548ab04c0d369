"""Rollouts decided by live evidence: a candidate version takes a growing canary share of
its alias (an adapter version) or of its template (a prompt template version), step by
step; at each step its live traffic is compared with production's (stats.py) and the step
passes, waits for data, or fails. Passing the last
step promotes the candidate; a failure rolls it back at once. Every step outcome is a
stored decision, and promotions and rollbacks are posted to the alert webhook.

One decider at a time: `tick` runs in the worker that holds the scheduler lease. It only
changes the alias or template release row (share, canary, production); an adapter version
is already loaded on every engine from the rollout's start, gateways follow alias rows in
`reconcile` and template release rows within the template cache's TTL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from feedback.live import Traffic
from feedback.models import aware
from serve.registry import Registry, RegistryError
from serve.rollouts.stats import (
    Comparison,
    compare_means,
    compare_p95,
    compare_rates,
    compare_win_rate,
)
from serve.rollouts.targets import KINDS, AdapterReleases, PromptReleases, Releases
from serve.settings import RolloutSettings
from serve.tables import Rollout, RolloutDecision, utcnow
from serve.template_releases import TemplateReleases

log = logging.getLogger(__name__)
RUNNING = "running"
NOT_POLICY = {"check_interval_s", "alert_webhook_url"}  # how often, whom to tell


class RolloutError(ValueError):
    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Verdict:
    outcome: str  # pass, wait, fail
    reason: str
    comparisons: list[Comparison]


def judge(
    canary: Traffic,
    production: Traffic,
    policy: dict[str, Any],
    waited_s: float,
    pairs: tuple[int, int] = (0, 0),
) -> Verdict:
    """One step: fail when any comparison finds the canary worse; wait while the canary
    lacks requests (or end-user ratings, until `max_step_s`); else pass. Review scores
    and pairwise reviews of shadow answers (`pairs`: the canary's wins and losses) count
    once there are `min_reviews`, but are never waited for: reviewers work at their own
    pace."""
    awaiting = policy["min_ratings"] > 0 and waited_s < policy["max_step_s"]
    min_ratings = max(1, policy["min_ratings"])
    rate_metrics = 4  # errors, thumbs-down, review score, pairwise win rate
    alpha = policy["alpha"] / rate_metrics
    checks = [
        compare_rates(
            "error_rate", (canary.errors, canary.requests),
            (production.errors, production.requests), alpha, policy["min_requests"],
        ),
        compare_p95(
            canary.latencies_ms, production.latencies_ms, policy["latency_tolerance"],
            policy["min_requests"] // 2, policy.get("latency_slack_ms", 0.0),
        ),
        compare_rates(
            "thumbs_down_rate", (canary.thumbs_down, canary.rated),
            (production.thumbs_down, production.rated), alpha, min_ratings,
        ),
        compare_means(
            "review_score", canary.review_scores, production.review_scores, alpha,
            policy["min_reviews"],
        ),
        compare_win_rate(*pairs, alpha, policy["min_reviews"]),
    ]  # fmt: skip
    worse = [c for c in checks if c.outcome == "worse"]
    if worse:
        return Verdict("fail", "; ".join(f"{c.metric} worse: {c.reason}" for c in worse), checks)
    if canary.requests < policy["min_requests"]:
        why = f"{canary.requests} of {policy['min_requests']} canary requests"
        return Verdict("wait", why, checks)
    awaited = [c for c in checks[2:3] if c.outcome == "no_data" and awaiting]
    if awaited:
        return Verdict("wait", "; ".join(f"{c.metric}: {c.reason}" for c in awaited), checks)
    return Verdict("pass", "no metric worse than production", checks)


class RolloutController:
    """Starts, judges, advances, promotes, rolls back and aborts rollouts."""

    def __init__(
        self,
        db: Engine,
        registry: Registry,
        settings: RolloutSettings,
        templates: TemplateReleases | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self.kinds: dict[str, Releases] = {
            "adapter": AdapterReleases(registry),
            "template": PromptReleases(templates),
        }

    def policy(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The settings' policy with a rollout's own values on top, validated."""
        try:
            merged = RolloutSettings.model_validate(
                {
                    **self.settings.model_dump(),
                    **{k: v for k, v in overrides.items() if v is not None},
                }
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RolloutError(f"invalid rollout policy: {where}: {first['msg']}") from None
        return merged.model_dump(exclude=NOT_POLICY)

    def start(
        self,
        session: Session,
        alias: str,
        version: int,
        policy: dict[str, Any],
        by: str | None,
        kind: str = "adapter",
    ) -> Rollout:
        """The version becomes the canary at the first step's share. `alias` is the
        template's name for a template rollout. Load an adapter version on every engine
        before calling this (the admin endpoint does)."""
        if kind not in KINDS:
            raise RolloutError(f"a rollout is of an adapter or a template, not '{kind}'")
        releases = self.kinds[kind]
        what = "alias" if kind == "adapter" else "template"
        if self.running(session, alias, kind) is not None:
            raise RolloutError(f"{what} '{alias}' already has a rollout running", 409, "conflict")
        releases.check(session, alias, version)
        baseline = releases.production(session, alias)
        if baseline is None:
            raise RolloutError(f"{what} '{alias}' has no production version", 404, "not_found")
        if baseline == version:
            raise RolloutError(f"{alias}@{version} is production already", 409, "conflict")
        releases.set_canary(session, alias, version, policy["steps"][0] / 100)
        rollout = Rollout(
            alias=alias,
            version=version,
            baseline_version=baseline,
            policy=policy,
            started_by=by,
            kind=kind,
        )
        session.add(rollout)
        session.flush()
        self._decide(
            session, rollout, "start", f"canary {alias}@{version} at {policy['steps'][0]}%"
        )
        return rollout

    def abort(self, session: Session, rollout_id: int, by: str | None) -> Rollout:
        rollout = session.get(Rollout, rollout_id)
        if rollout is None:
            raise RolloutError(f"rollout {rollout_id} does not exist", 404, "not_found")
        if rollout.state != RUNNING:
            raise RolloutError(f"rollout {rollout_id} is {rollout.state} already", 409, "conflict")
        self._end(session, rollout, "aborted", "abort", f"aborted by {by or 'an admin'}", [])
        return rollout

    def running(self, session: Session, alias: str, kind: str = "adapter") -> Rollout | None:
        return session.exec(
            select(Rollout).where(
                Rollout.alias == alias, Rollout.kind == kind, Rollout.state == RUNNING
            )
        ).first()

    def tick(self) -> list[RolloutDecision]:
        """Judge every running rollout once; return the decisions taken."""
        decisions = []
        with Session(self.db) as session:
            ids = session.exec(select(Rollout.id).where(Rollout.state == RUNNING)).all()
        for rollout_id in ids:
            with Session(self.db) as session:
                rollout = session.get(Rollout, rollout_id)
                if rollout is None or rollout.state != RUNNING:
                    continue
                try:
                    decision = self._judge(session, rollout)
                except RegistryError as exc:  # the alias changed under it: stop, say why
                    decision = self._end(session, rollout, "aborted", "abort", str(exc), [])
                if decision is not None:
                    decisions.append(decision)
                    self._alert(rollout, decision)
        return decisions

    def _judge(self, session: Session, rollout: Rollout) -> RolloutDecision | None:
        releases = self.kinds[rollout.kind]
        if releases.canary(session, rollout.alias) != rollout.version:
            return self._end(
                session, rollout, "aborted", "abort",
                f"the {rollout.kind}'s canary was changed by hand; the rollout stopped", [],
            )  # fmt: skip
        step_start = aware(rollout.step_started_at)
        canary = releases.traffic(session, rollout.alias, rollout.version, step_start)
        production = releases.traffic(
            session, rollout.alias, rollout.baseline_version, aware(rollout.started_at)
        )
        waited = (utcnow() - step_start).total_seconds()
        pairs = releases.pairs(session, rollout.alias, rollout.version, rollout.baseline_version)
        verdict = judge(canary, production, rollout.policy, waited, pairs)
        found = [c.as_dict() for c in verdict.comparisons]
        rollout.last_check = {"at": utcnow().isoformat(), "outcome": verdict.outcome,
                              "reason": verdict.reason, "comparisons": found}  # fmt: skip
        steps = rollout.policy["steps"]
        if verdict.outcome == "wait":
            session.add(rollout)
            session.commit()
            return None
        if verdict.outcome == "fail":
            return self._end(session, rollout, "rolled_back", "rollback", verdict.reason, found)
        if rollout.step + 1 >= len(steps):
            releases.promote(session, rollout.alias, rollout.version)
            why = f"passed all {len(steps)} steps ({verdict.reason})"
            return self._end(session, rollout, "promoted", "promote", why, found)
        rollout.step += 1
        rollout.step_started_at = utcnow()
        share = steps[rollout.step]
        releases.set_canary(session, rollout.alias, rollout.version, share / 100)
        why = f"step {rollout.step} passed ({verdict.reason}); canary now {share}%"
        return self._decide(session, rollout, "advance", why, found)

    def _end(
        self,
        session: Session,
        rollout: Rollout,
        state: str,
        action: str,
        reason: str,
        comparisons: list[dict[str, Any]],
    ) -> RolloutDecision:
        """The rollout is over: its canary share goes to 0 (a promotion has already made the
        version production), and the last decision is recorded."""
        releases = self.kinds[rollout.kind]
        if releases.canary(session, rollout.alias) == rollout.version:
            releases.set_canary(session, rollout.alias, None, 0.0)
        rollout.state = state
        return self._decide(session, rollout, action, reason, comparisons)

    def _decide(
        self,
        session: Session,
        rollout: Rollout,
        action: str,
        reason: str,
        comparisons: list[dict[str, Any]] | None = None,
    ) -> RolloutDecision:
        assert rollout.id is not None
        rollout.updated_at = utcnow()
        steps = rollout.policy["steps"]
        share = (
            100.0
            if action == "promote"
            else 0.0
            if rollout.state != RUNNING
            else steps[rollout.step]
        )
        decision = RolloutDecision(
            rollout_id=rollout.id, alias=rollout.alias, step=rollout.step, share=share,
            action=action, reason=reason, comparisons=comparisons or [],
        )  # fmt: skip
        session.add(rollout)
        session.add(decision)
        session.commit()
        session.refresh(decision)
        session.refresh(rollout)
        log.warning("rollout %s of %s@%s: %s (%s)", rollout.id, rollout.alias, rollout.version,
                    action, reason)  # fmt: skip
        return decision

    def _alert(self, rollout: Rollout, decision: RolloutDecision) -> None:
        url = self.settings.alert_webhook_url
        if url is None or decision.action not in {"promote", "rollback", "abort"}:
            return
        payload = {
            "kind": "rollout",
            "of": rollout.kind,
            "alias": rollout.alias,
            "version": rollout.version,
            "rollout_id": rollout.id,
            "action": decision.action,
            "reason": decision.reason,
        }
        try:
            httpx.post(url, json=payload, timeout=10)
        except httpx.HTTPError as exc:
            log.warning("rollout alert webhook failed: %s", exc)


def decisions(session: Session, rollout_id: int) -> list[RolloutDecision]:
    return list(
        session.exec(
            select(RolloutDecision)
            .where(RolloutDecision.rollout_id == rollout_id)
            .order_by(col(RolloutDecision.id))
        )
    )


def recent(
    session: Session, alias: str | None = None, limit: int = 50, kind: str | None = None
) -> list[Rollout]:
    query = select(Rollout).order_by(col(Rollout.id).desc()).limit(limit)
    if alias is not None:
        query = query.where(Rollout.alias == alias)
    if kind is not None:
        query = query.where(Rollout.kind == kind)
    return list(session.exec(query))


def overview(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """Recent rollouts with what was last decided (or, while running, last checked)."""
    rows = []
    for rollout in recent(session, None, limit):
        taken = decisions(session, rollout.id or 0)
        summary = taken[-1].reason if taken else ""
        if rollout.state == RUNNING and rollout.last_check:
            summary = f"{rollout.last_check['outcome']}: {rollout.last_check['reason']}"
        rows.append({**rollout.model_dump(), "summary": summary})
    return rows
