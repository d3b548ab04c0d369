"""Feedback and review API. `feedback` imports nothing of ours, so the app factory hands
in the auth dependency (`require(role)`) and which adapter versions count as new."""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlmodel import Session, col, select

from feedback.capture import CaptureWriter
from feedback.export import ExportFilters, export_dataset
from feedback.golden import GoldenError, describe, golden_hash, golden_items, pin, unpin
from feedback.models import Interaction, Review, UserFeedback
from feedback.ops import OpsStats, Window, ops_stats
from feedback.pairwise import PairError, next_pair, submit_pair
from feedback.protocol import (
    FeedbackRequest,
    FeedbackResponse,
    GoldenItemOut,
    GoldenPinRequest,
    GoldenSet,
    PairItem,
    PairRequest,
    PairResult,
    PreferenceExportRequest,
    ReviewItem,
    ReviewOut,
    ReviewRequest,
    ReviewStats,
    SkipRequest,
)
from feedback.queue import QueueError, ReviewQueue
from feedback.settings import FeedbackSettings
from feedback.signals import Thresholds, export_judged, export_pairs
from feedback.stats import current_rating, review_stats

NewVersions = Callable[[], set[tuple[str, int]]]


def get_session(request: Request):  # type: ignore[no-untyped-def]
    yield from request.app.state.sessions()


def get_capture(request: Request) -> CaptureWriter:
    return request.app.state.capture  # type: ignore[no-any-return]


def build_router(
    require: Callable[[str], Callable[..., Any]],
    settings: FeedbackSettings,
    new_versions: NewVersions = set,
) -> APIRouter:
    router = APIRouter(tags=["feedback"])
    DB = Annotated[Session, Depends(get_session)]
    Client = Annotated[Any, Depends(require("client"))]
    Reviewer = Annotated[Any, Depends(require("reviewer"))]
    Admin = Annotated[Any, Depends(require("admin"))]

    def reviewer_id(principal: Any) -> str:
        return principal.key_id or "local"

    def queue() -> ReviewQueue:
        return ReviewQueue(settings, new_versions())

    @router.post("/v1/feedback", response_model=FeedbackResponse)
    def feedback(
        body: FeedbackRequest,
        principal: Client,
        session: DB,
        capture: Annotated[CaptureWriter, Depends(get_capture)],
    ) -> FeedbackResponse:
        """The end user's rating of an interaction; a second one replaces the first (an
        interaction has one current rating, as it had one end user).

        Only the key that made the interaction (or an admin) may rate it, and only for the
        end user it was served to (OpenAI's `user` field, when the request named one): a
        client cannot pile up ratings on others' traffic to steer a rollout.
        A rating may come before its interaction reached the database (the capture queue
        writes in batches): it waits for that write, and only if the database is not
        answering says 503 with Retry-After; nothing is lost either way."""
        item = session.get(Interaction, body.interaction_id)
        if item is None:
            pending = capture.pending(body.interaction_id)
            if pending and not capture.wait_written(body.interaction_id, settings.feedback_wait_s):
                raise HTTPException(
                    503,
                    f"interaction {body.interaction_id} is still being captured (the database "
                    "is not answering): send the rating again shortly",
                    headers={"Retry-After": "2"},
                )
            session.rollback()  # a new snapshot: the writer may have just written it
            item = session.get(Interaction, body.interaction_id)
            if item is None:
                raise HTTPException(404, f"interaction {body.interaction_id} does not exist")
        if principal.role != "admin" and item.client_key_id != principal.key_id:
            raise HTTPException(
                403, f"interaction {item.id} was made with another key: only it may rate it"
            )
        served_to = item.request.get("user")
        served_to = served_to if isinstance(served_to, str) else ""
        end_user = body.end_user_id or served_to
        if served_to and end_user != served_to:
            raise HTTPException(
                403, f"interaction {item.id} was served to another end user: they may rate it"
            )
        if isinstance(body.rating, str):
            rating, scale = (1 if body.rating == "up" else -1), "thumbs"
        elif 1 <= body.rating <= 5:
            rating, scale = body.rating, "stars"
        else:
            raise HTTPException(400, f"rating must be 'up', 'down' or 1-5, got {body.rating}")
        previous = session.exec(
            select(UserFeedback).where(
                UserFeedback.interaction_id == body.interaction_id,
                col(UserFeedback.current).is_(True),
            )
        ).all()
        for row in previous:
            row.current = False
            session.add(row)
        row = UserFeedback(
            interaction_id=body.interaction_id,
            end_user_id=end_user,
            rating=rating,
            scale=scale,
            comment=body.comment,
        )
        session.add(row)
        session.commit()
        session.refresh(row)
        assert row.id is not None
        return FeedbackResponse(
            id=row.id,
            interaction_id=row.interaction_id,
            rating=rating,
            scale=scale,
            replaced_previous=bool(previous),
        )

    @router.get(
        "/v1/reviews/next",
        response_model=ReviewItem,
        responses={204: {"description": "Nothing to review"}},
    )
    def next_item(principal: Reviewer, session: DB) -> Any:
        found = queue().next(session, reviewer_id(principal))
        if found is None:
            return Response(status_code=204)
        item, lease = found
        rating = current_rating(session, item.id)
        return ReviewItem(
            interaction_id=item.id,
            lease_expires_at=lease.expires_at,
            slot=lease.slot,
            created_at=item.created_at,
            messages=item.conversation,
            response_text=item.response_text,
            tool_calls=item.tool_calls,
            tools=item.tools,
            template=item.template,
            template_version=item.template_version,
            alias=item.alias,
            adapter_version=item.adapter_version,
            end_user_rating=rating
            and {"rating": rating.rating, "scale": rating.scale, "comment": rating.comment},
            labels=settings.review_labels,
            trace_id=item.trace_id,
        )

    @router.post("/v1/reviews", response_model=ReviewOut, status_code=201)
    def submit(body: ReviewRequest, principal: Reviewer, session: DB) -> Review:
        review = Review(reviewer_id=reviewer_id(principal), **body.model_dump(exclude_none=True))
        try:
            return queue().submit(session, reviewer_id(principal), review)
        except QueueError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @router.post("/v1/reviews/skip", status_code=204)
    def skip(body: SkipRequest, principal: Reviewer, session: DB) -> Response:
        try:
            queue().skip(session, reviewer_id(principal), body.interaction_id)
        except QueueError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return Response(status_code=204)

    @router.get(
        "/v1/reviews/pairs/next",
        response_model=PairItem,
        responses={204: {"description": "No shadow answer waits for this reviewer"}},
    )
    def next_pair_item(principal: Reviewer, session: DB) -> Any:
        """A production answer and its shadow's side by side, blind."""
        reviewer = reviewer_id(principal)
        pair = next_pair(session, reviewer)
        if pair is None:
            return Response(status_code=204)
        return PairItem(**pair.shown(reviewer))

    @router.post("/v1/reviews/pairs", response_model=PairResult, status_code=201)
    def submit_pair_review(body: PairRequest, principal: Reviewer, session: DB) -> PairResult:
        try:
            row, pair = submit_pair(
                session,
                reviewer_id(principal),
                body.interaction_id,
                body.preferred,
                body.correction,
            )
        except PairError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return PairResult(
            preferred=row.preferred,  # type: ignore[arg-type]
            production_version=pair.production.adapter_version,
            shadow_version=pair.shadow.adapter_version,
        )

    @router.post("/v1/datasets/preferences", dependencies=[Depends(require("admin"))])
    def export_preference_rows(body: PreferenceExportRequest, session: DB) -> dict[str, Any]:
        """Preference rows with their manifest: pairs (DPO) or judged answers (KTO)."""
        if body.kind == "judged":
            thresholds = Thresholds.from_settings(settings)
            result = export_judged(session, body.alias, thresholds, settings.pii_patterns)
        else:
            result = export_pairs(session, body.alias, settings.pii_patterns)
        return {"manifest": result.manifest, "rows": result.rows}

    @router.post("/v1/datasets/export", dependencies=[Depends(require("admin"))])
    def export(filters: ExportFilters, session: DB) -> dict[str, Any]:
        """Reviewed interactions as training rows, with their manifest."""
        result = export_dataset(session, filters, settings.pii_patterns)
        return {"manifest": result.manifest, "rows": result.rows}

    @router.get("/v1/golden/{alias}", response_model=GoldenSet)
    def golden(alias: str, _: Reviewer, session: DB) -> GoldenSet:
        """The alias's fixed evaluation set, which every retraining run is gated on."""
        items = golden_items(session, alias)
        return GoldenSet(
            alias=alias,
            hash=golden_hash(items),
            items=[GoldenItemOut(**describe(i)) for i in items],
        )

    @router.post("/v1/golden/{alias}", response_model=GoldenItemOut, status_code=201)
    def golden_pin(alias: str, body: GoldenPinRequest, principal: Admin, session: DB) -> Any:
        """Pin a reviewed interaction: its question and reviewed answer join the set."""
        try:
            item = pin(
                session,
                alias,
                body.interaction_id,
                reviewer_id(principal),
                settings.golden_min_score,
                settings.pii_patterns,
            )
        except GoldenError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return GoldenItemOut(**describe(item))

    @router.delete("/v1/golden/{alias}/{key:path}", status_code=204)
    def golden_unpin(alias: str, key: str, _: Admin, session: DB) -> Response:
        if not unpin(session, alias, key):
            raise HTTPException(404, f"{key} is not in the golden set of {alias}")
        return Response(status_code=204)

    @router.get("/v1/stats", response_model=OpsStats)
    def stats_by_version(
        _: Reviewer,
        session: DB,
        window: Window = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> OpsStats:
        """Per alias and adapter version, per hour or day: volume, scores, rates, latency."""
        return ops_stats(session, window, since, until)

    @router.get("/v1/reviews/stats", response_model=ReviewStats)
    def stats(_: Reviewer, session: DB) -> ReviewStats:
        return review_stats(session, settings.review_labels, settings.agreement_flag_below)

    return router
