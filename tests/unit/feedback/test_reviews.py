"""End-user feedback, the review queue, reviews and agreement, through the HTTP API."""

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from feedback.models import UserFeedback
from serve.auth import create_key


def keys(client: TestClient, role: str, n: int) -> list[dict[str, str]]:
    with Session(client.app.state.db) as session:  # type: ignore[attr-defined]
        return [{"Authorization": f"Bearer {create_key(session, role)}"} for _ in range(n)]


def traffic(client: TestClient, n: int, template: str | None = None) -> list[str]:
    ids = []
    for i in range(n):
        body = {"model": "base", "messages": [{"role": "user", "content": f"question {i}"}]}
        if template:
            body["template"] = template
        response = client.post("/v1/chat/completions", json=body, headers=CLIENT)
        assert response.status_code == 200, response.text
        ids.append(response.json()["interaction_id"])
    client.app.state.capture.flush()  # type: ignore[attr-defined]
    time.sleep(0.1)
    return ids


CLIENT: dict[str, str] = {}


@pytest.fixture
def make_locked(
    migrated_db: str, make_gateway: Callable[..., TestClient]
) -> Callable[..., TestClient]:
    def make(**feedback: object) -> TestClient:
        client = make_gateway(migrated_db, feedback=feedback, require_keys=True)
        CLIENT.clear()
        CLIENT.update(keys(client, "client", 1)[0])
        return client

    return make


def test_end_user_rating_replaces_and_keeps_history(make_locked) -> None:  # type: ignore[no-untyped-def]
    """An interaction has one current rating: a changed mind (or, without a recorded end
    user, another id) replaces it; every row is kept."""
    gw = make_locked()
    [iid] = traffic(gw, 1)
    first = gw.post(
        "/v1/feedback",
        headers=CLIENT,
        json={"interaction_id": iid, "rating": "down", "end_user_id": "u1"},
    )
    assert first.status_code == 200, first.text
    assert first.json() | {"id": 0} == {
        "id": 0,
        "interaction_id": iid,
        "rating": -1,
        "scale": "thumbs",
        "replaced_previous": False,
    }
    second = gw.post(
        "/v1/feedback",
        headers=CLIENT,
        json={"interaction_id": iid, "rating": 4, "end_user_id": "u1"},
    )
    assert second.json()["replaced_previous"] is True
    gw.post(
        "/v1/feedback",
        headers=CLIENT,
        json={"interaction_id": iid, "rating": "up", "end_user_id": "u2"},
    )
    with Session(gw.app.state.db) as session:  # type: ignore[attr-defined]
        rows = list(session.exec(select(UserFeedback).order_by(UserFeedback.id)))
    assert [(r.end_user_id, r.rating, r.current) for r in rows] == [
        ("u1", -1, False),
        ("u1", 4, False),
        ("u2", 1, True),
    ]

    unknown = gw.post("/v1/feedback", headers=CLIENT, json={"interaction_id": "nope", "rating": 1})
    assert unknown.status_code == 404
    assert "does not exist" in unknown.json()["error"]["message"]
    out_of_range = gw.post(
        "/v1/feedback", headers=CLIENT, json={"interaction_id": iid, "rating": 9}
    )
    assert out_of_range.status_code == 400
    reviewer_only = gw.get("/v1/reviews/next", headers=CLIENT)
    assert reviewer_only.status_code == 403


def test_queue_leases_and_never_repeats_an_item(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked()
    ids = set(traffic(gw, 4))
    alice, bob = keys(gw, "reviewer", 2)
    first = gw.get("/v1/reviews/next", headers=alice).json()
    assert first["interaction_id"] in ids
    assert first["messages"][-1]["content"].startswith("question")
    assert first["response_text"].startswith("[base] echo")
    again = gw.get("/v1/reviews/next", headers=alice).json()
    assert again["interaction_id"] == first["interaction_id"], "the held lease comes back"

    seen_by_bob = set()
    while (r := gw.get("/v1/reviews/next", headers=bob)).status_code == 200:
        item = r.json()["interaction_id"]
        assert item != first["interaction_id"], "k=1: leased to alice, never to bob too"
        assert item not in seen_by_bob
        seen_by_bob.add(item)
        assert (
            gw.post("/v1/reviews/skip", headers=bob, json={"interaction_id": item}).status_code
            == 204
        )
    assert r.status_code == 204
    assert seen_by_bob == ids - {first["interaction_id"]}

    done = gw.post(
        "/v1/reviews",
        headers=alice,
        json={
            "interaction_id": first["interaction_id"],
            "score": 2,
            "labels": ["wrong"],
            "correction": "The right answer.",
            "note": "made up",
        },
    )
    assert done.status_code == 201, done.text
    nxt = gw.get("/v1/reviews/next", headers=alice).json()
    assert nxt["interaction_id"] != first["interaction_id"]


def test_review_errors_are_clear(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked(review_lease_s=0.5)
    a, b = traffic(gw, 2)
    [alice] = keys(gw, "reviewer", 1)
    item = gw.get("/v1/reviews/next", headers=alice).json()["interaction_id"]
    other = b if item == a else a

    def review(iid: str, **extra: object):  # type: ignore[no-untyped-def]
        return gw.post(
            "/v1/reviews", headers=alice, json={"interaction_id": iid, "score": 3, **extra}
        )

    assert review(item, score=6).status_code == 400
    unknown = review(item, labels=["boring"])
    assert unknown.status_code == 422
    assert "boring" in unknown.json()["error"]["message"]
    not_leased = review(other)
    assert not_leased.status_code == 409
    assert "not leased to you" in not_leased.json()["error"]["message"]
    time.sleep(0.7)
    expired = review(item)
    assert expired.status_code == 410
    assert "expired" in expired.json()["error"]["message"]


def test_revision_supersedes_and_only_own_reviews(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked()
    traffic(gw, 1)
    alice, bob = keys(gw, "reviewer", 2)
    iid = gw.get("/v1/reviews/next", headers=alice).json()["interaction_id"]
    first = gw.post("/v1/reviews", headers=alice, json={"interaction_id": iid, "score": 2}).json()
    revised = gw.post(
        "/v1/reviews",
        headers=alice,
        json={"interaction_id": iid, "score": 5, "supersedes_id": first["id"]},
    )
    assert revised.status_code == 201
    assert revised.json()["supersedes_id"] == first["id"]
    theft = gw.post(
        "/v1/reviews",
        headers=bob,
        json={"interaction_id": iid, "score": 1, "supersedes_id": first["id"]},
    )
    assert theft.status_code == 403
    stats = gw.get("/v1/reviews/stats", headers=alice).json()
    assert stats["reviews"] == 1, "the superseded review no longer counts"


def test_negative_ratings_are_oversampled(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked(sample_negative_weight=1e6)
    ids = traffic(gw, 12)
    gw.post("/v1/feedback", headers=CLIENT, json={"interaction_id": ids[5], "rating": "down"})
    [alice] = keys(gw, "reviewer", 1)
    item = gw.get("/v1/reviews/next", headers=alice).json()
    assert item["interaction_id"] == ids[5]
    assert item["end_user_rating"]["rating"] == -1


def test_strata_take_turns(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked()
    traffic(gw, 8)
    [lone] = traffic(gw, 1, template="summarizer")
    alice, bob = keys(gw, "reviewer", 2)
    first = gw.get("/v1/reviews/next", headers=alice).json()
    gw.post(
        "/v1/reviews", headers=alice, json={"interaction_id": first["interaction_id"], "score": 4}
    )
    second = gw.get("/v1/reviews/next", headers=bob).json()
    templates = {first["template"], second["template"]}
    assert templates == {None, "summarizer"}, "the stratum with fewer reviews goes next"
    assert lone in {first["interaction_id"], second["interaction_id"]}


def test_agreement_flags_the_outlier(make_locked) -> None:  # type: ignore[no-untyped-def]
    gw = make_locked(reviews_per_item=3)
    traffic(gw, 6)
    reviewers = keys(gw, "reviewer", 3)
    ids = {}
    for n, headers in enumerate(reviewers):
        for _ in range(6):
            item = gw.get("/v1/reviews/next", headers=headers).json()
            iid = item["interaction_id"]
            ids.setdefault(iid, len(ids))
            good = 1 + ids[iid] % 5
            score = good if n < 2 else 6 - good
            labels = ["wrong"] if (good <= 2) == (n < 2) else []
            r = gw.post(
                "/v1/reviews",
                headers=headers,
                json={"interaction_id": iid, "score": score, "labels": labels},
            )
            assert r.status_code == 201, r.text
    stats = gw.get("/v1/reviews/stats", headers=reviewers[0]).json()
    assert stats["items_with_several_reviews"] == 6
    assert stats["reviews"] == 18
    flagged = [r for r in stats["reviewers"] if r["flagged"]]
    assert len(flagged) == 1
    assert flagged[0]["score_alpha"] < 0
    assert set(stats["label_alpha"]) == {"wrong", "hallucination", "tone", "format", "unsafe"}


def test_parallel_reviewers_lose_no_review(
    migrated_db: str, make_live_gateway: Callable[..., object]
) -> None:
    """Six reviewers work the queue at once over HTTP; every item gets exactly k reviews."""
    import threading

    import httpx

    from loraloop import db
    from serve.auth import create_key as new_key

    settings = make_live_gateway(migrated_db, feedback={"reviews_per_item": 2}, require_keys=True)
    base = f"http://127.0.0.1:{settings.serve.port}"  # type: ignore[attr-defined]
    engine = db.create_db_engine(migrated_db)
    with Session(engine) as session:
        client = {"Authorization": f"Bearer {new_key(session, 'client')}"}
        reviewers = [{"Authorization": f"Bearer {new_key(session, 'reviewer')}"} for _ in range(6)]
    engine.dispose()
    with httpx.Client(base_url=base, headers=client, timeout=30) as http:
        for i in range(15):
            assert (
                http.post(
                    "/v1/chat/completions",
                    json={"model": "base", "messages": [{"role": "user", "content": f"q{i}"}]},
                ).status_code
                == 200
            )
    time.sleep(0.5)
    submitted: list[int] = []
    errors: list[str] = []

    def work(headers: dict[str, str]) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            while (r := http.get("/v1/reviews/next")).status_code == 200:
                iid = r.json()["interaction_id"]
                done = http.post("/v1/reviews", json={"interaction_id": iid, "score": 4})
                if done.status_code != 201:
                    errors.append(done.text)
                else:
                    submitted.append(done.json()["id"])
            if r.status_code != 204:
                errors.append(r.text)

    threads = [threading.Thread(target=work, args=(h,)) for h in reviewers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with httpx.Client(base_url=base, headers=reviewers[0], timeout=30) as http:
        stats = http.get("/v1/reviews/stats").json()
    assert stats["reviews"] == len(submitted) == 30, "15 items x k=2, none lost"
    assert stats["items_with_several_reviews"] == 15
