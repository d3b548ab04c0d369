"""Descriptors of captured traffic and the verdict policy."""

from datetime import timedelta

import pytest
from sqlmodel import Session

from feedback.drift import DriftSettings, decide
from feedback.drift.frames import REFUSAL, load_frame, normalise_rating, prompt_text
from feedback.drift.report import run_report
from feedback.models import Interaction, Review, UserFeedback, utcnow
from loraloop import db
from tests.utils.traffic import insert_traffic, rows


def test_prompt_text_takes_the_last_user_turn() -> None:
    chat = Interaction(
        endpoint="chat",
        request={},
        rendered_messages=[
            {"role": "system", "content": "persona"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    )
    assert prompt_text(chat) == "second"
    completion = Interaction(endpoint="completions", request={"prompt": "Once upon"})
    assert prompt_text(completion) == "Once upon"
    assert prompt_text(Interaction(endpoint="chat", request={"messages": "junk"})) == ""


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("As an AI, I cannot do that.", True),
        ("I cannot provide that information.", True),
        ("Sure, open Settings and pick Account.", False),
        ("Sorry for the wait! Your parcel ships today.", False),
    ],
)
def test_refusals(text: str, refused: bool) -> None:
    assert bool(REFUSAL.search(text)) is refused


def test_ratings_share_one_scale() -> None:
    assert normalise_rating(1, "thumbs") == 1.0 and normalise_rating(-1, "thumbs") == 0.0
    assert normalise_rating(1, "stars") == 0.0 and normalise_rating(5, "stars") == 1.0


def test_frame_uses_current_ratings_and_latest_reviews(migrated_db: str) -> None:
    engine = db.create_db_engine(migrated_db)
    now = utcnow()
    interactions, _ = rows(2, now - timedelta(hours=1), now)
    insert_traffic(engine, interactions)
    a, b = interactions[0]["id"], interactions[1]["id"]
    with Session(engine) as session:
        session.add(UserFeedback(interaction_id=a, rating=-1, scale="thumbs", current=False))
        session.add(UserFeedback(interaction_id=a, rating=1, scale="thumbs"))
        first = Review(interaction_id=a, reviewer_id="r", score=1)
        session.add(first)
        session.commit()
        session.add(Review(interaction_id=a, reviewer_id="r", score=5, supersedes_id=first.id))
        session.add(Review(interaction_id=a, reviewer_id="s", score=4))
        session.commit()
        frame = load_frame(session, [a, b]).set_index("id")
    assert frame.loc[a, "user_rating"] == 1.0
    assert frame.loc[a, "review_score"] == 4.5
    assert frame.loc[b, ["user_rating", "review_score"]].isna().all()
    assert frame.loc[a, "prompt_chars"] == len(frame.loc[a, "prompt"])
    engine.dispose()


def test_decision_policy() -> None:
    s = DriftSettings(retrain_min_share=0.5, retrain_min_new_reviews=100)
    assert decide("no_drift", 0.9, 500, s).retrain is False
    assert decide("not_enough_data", 0.0, 500, s).alert is False
    low = decide("drift", 0.4, 500, s)
    assert (low.retrain, low.alert) == (False, True) and "below the retrain threshold" in low.reason
    few = decide("drift", 0.6, 20, s)
    assert few.retrain is False and "only 20 reviewed" in few.reason
    assert decide("drift", 0.6, 100, s).retrain is True
    off = DriftSettings(retrain_on_drift=False, alert_on_drift=False)
    assert decide("drift", 1.0, 10_000, off) == decide("drift", 1.0, 10_000, off)
    assert decide("drift", 1.0, 10_000, off).retrain is False
    assert decide("drift", 1.0, 10_000, off).alert is False


def test_settings_refuse_a_fixed_window_without_bounds() -> None:
    with pytest.raises(ValueError, match="reference_from and reference_to"):
        DriftSettings(reference="fixed")


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
]


def agent_turn(n: int, arguments: str | None) -> Interaction:
    calls = [{"function": {"name": "lookup_order", "arguments": arguments}}] if arguments else None
    return Interaction(
        endpoint="chat",
        alias="orders",
        request={"messages": [{"role": "user", "content": f"order {n}?"}], "tools": TOOLS},
        tool_calls=calls,
        response_text=None if calls else f"I cannot see order {n}.",
    )


def test_tool_use_columns_and_their_drift_in_a_real_report(sqlite_url: str) -> None:
    """Reference: plain chat. Current: agent traffic, calls valid and invalid. The three
    tool-use columns say so row by row, and Evidently finds them drifted."""
    plain = [Interaction(endpoint="chat", alias="orders", request={}) for _ in range(40)]
    agent = [
        agent_turn(n, ['{"order_id": "A-1"}', '{"id": 1}', None, "{oops"][n % 4]) for n in range(40)
    ]
    engine = db.create_db_engine(sqlite_url)
    with Session(engine) as session:
        session.add_all(plain + agent)
        session.commit()
        ref = load_frame(session, [i.id for i in plain])
        cur = load_frame(session, [i.id for i in agent])
    engine.dispose()
    assert set(ref["has_tools"]) == {"no"} and set(ref["tools_called"]) == {"none"}
    assert cur["tool_args"].value_counts().to_dict() == {
        "invalid": 20,
        "valid": 10,
        "no call": 10,
    }
    assert cur["tools_called"].value_counts().to_dict() == {"lookup_order": 30, "none": 10}

    outcome = run_report(ref, cur, None, None, DriftSettings(min_column_values=10))
    verdicts = {c["column"]: c for c in outcome.columns}
    for column in ("has_tools", "tools_called", "tool_args"):
        assert verdicts[column]["drifted"] is True, verdicts[column]
