"""Seed files, curation (PII, lengths, duplicates, split, leakage) and its refusals."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.curate import (
    LshIndex,
    MinHasher,
    curate,
    jaccard,
    near_duplicates,
    require_examples,
    shingles,
    similar,
)
from retrain.dataset import DatasetError, Example, content_hash, read_seed
from retrain.settings import RetrainSettings


def ex(i: int, question: str, answer: str, template: str | None = "faq") -> Example:
    return Example(
        f"s:{i}",
        ({"role": "user", "content": question}, {"role": "assistant", "content": answer}),
        "seed",
        template,
    )


def questions(n: int) -> list[Example]:
    topics = ["invoice", "password", "parcel", "refund", "warranty", "account", "delivery"]
    return [
        ex(i, f"Question {i}: how do I handle my {topics[i % 7]} case number {i * 37}?",
           f"Answer {i}: open the {topics[i % 7]} page and quote reference {i * 91}.")
        for i in range(n)
    ]  # fmt: skip


def test_seed_file_errors_name_the_line(tmp_path: Path) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    cases = {
        "not json": "not JSON",
        json.dumps({"messages": []}): "at least two turns",
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": 1}]}):
            "each turn needs a role",
        json.dumps({"messages": [{"role": "assistant", "content": "a"},
                                 {"role": "user", "content": "q"}]}): "last turn",
    }  # fmt: skip
    for bad, message in cases.items():
        path = tmp_path / "seed.jsonl"
        path.write_text(json.dumps(good) + "\n\n" + bad + "\n")
        with pytest.raises(DatasetError, match=rf"seed.jsonl:3: .*{message}"):
            read_seed(path)
    path.write_text(json.dumps(good) + "\n")
    [row] = read_seed(path)
    assert row.id == "seed.jsonl:1" and row.answer == "a"
    with pytest.raises(DatasetError, match="does not exist"):
        read_seed(tmp_path / "missing.jsonl")


def test_minhash_estimates_similarity() -> None:
    hasher = MinHasher(0)
    a = hasher.signature(
        shingles("the parcel was delivered to the wrong address on monday morning")
    )
    b = hasher.signature(
        shingles("the parcel was delivered to the wrong address on monday evening")
    )
    c = hasher.signature(shingles("how do I change the password of my account"))
    assert similar(a, b) > 0.5 > similar(a, c)
    kept, dropped = near_duplicates(
        [ex(1, "the parcel was delivered to the wrong address on monday morning", "x"),
         ex(2, "the parcel was delivered to the wrong address on monday morning!", "x"),
         ex(3, "how do I change the password of my account", "y")],
        0.8, hasher,
    )  # fmt: skip
    assert [k.id for k in kept] == ["s:1", "s:3"] and dropped == 1


def test_curation_report_and_split() -> None:
    data = questions(200)
    data += [data[0], ex(900, data[1].messages[0]["content"] + " ", data[1].answer)]  # dupes
    data += [ex(901, "Mail me at ana@example.com please", "Sure, at ana@example.com.")]
    data += [ex(902, "Too short?", "")]
    settings = RetrainSettings(min_examples=100, eval_fraction=0.2)
    result = curate(data, settings)
    report = result.report
    assert report["input"] == 204
    assert report["dropped_length"] == 1
    assert report["dropped_exact_duplicates"] + report["dropped_near_duplicates"] == 2
    assert report["pii_scrubbed"] == {"EMAIL": 2}
    assert report["train"] + report["eval"] + report["dropped_eval_leaks"] == 201
    assert 20 < report["eval"] < 60
    assert {e.id for e in result.train}.isdisjoint({e.id for e in result.eval})
    assert report["balance"]["template"] == {"faq": report["train"]}
    assert report["train_hash"] == content_hash(result.train)
    again = curate(list(reversed(data)), settings)  # deterministic, order aside
    assert {e.id for e in again.eval} == {e.id for e in result.eval}


def test_held_out_prompts_do_not_leak_into_training() -> None:
    data = questions(120)
    settings = RetrainSettings(min_examples=10, eval_fraction=0.2, near_duplicate=0.9)
    held = curate(data, settings).eval
    # The same held-out question again, with another id and answer: a leak unless dropped.
    leaks = [ex(5000 + i, e.messages[0]["content"], "another answer " + e.answer)
             for i, e in enumerate(held)]  # fmt: skip
    result = curate(data + leaks, settings)
    eval_prompts = {e.messages[0]["content"] for e in result.eval}
    assert not [e for e in result.train if e.messages[0]["content"] in eval_prompts]
    assert result.report["dropped_eval_leaks"] > 0


def test_training_refuses_below_the_minimum_and_says_how_many_more() -> None:
    with pytest.raises(DatasetError, match=r"only \d+ training examples .*need 50\b") as caught:
        curate(questions(30), RetrainSettings())
    more = int(re.search(r"about (\d+) more reviewed examples", str(caught.value))[1])
    # 30 in, ~27 kept after the held-out split: about 23 more at that rate make ~50.
    assert 20 <= more <= 32
    assert len(curate(questions(30 + more + 10), RetrainSettings()).train) >= 50


def test_sft_before_a_preference_stage_needs_fewer_examples() -> None:
    curated = curate(questions(14), RetrainSettings(), require=False)
    with pytest.raises(DatasetError, match=r"need 50, LORALOOP_RETRAIN_MIN_EXAMPLES\)"):
        require_examples(curated, RetrainSettings())
    require_examples(curated, RetrainSettings(), first=True)  # 12 or so: enough to go first
    few = curate(questions(6), RetrainSettings(), require=False)
    with pytest.raises(DatasetError, match=r"need 10, LORALOOP_RETRAIN_MIN_EXAMPLES_FIRST\)"):
        require_examples(few, RetrainSettings(), first=True)


def test_golden_items_never_train() -> None:
    data = questions(120)
    settings = RetrainSettings(min_examples=10, eval_fraction=0.2, near_duplicate=0.9)
    pinned = data[:5]  # pinned interactions: the same ids
    golden = [replace(e, id=f"golden:{e.id}", source="golden") for e in pinned]
    # a file's golden question that also sits in the training data under another id
    golden.append(ex(9000, data[50].messages[0]["content"], "the golden answer"))
    result = curate(data, settings, golden=golden)
    kept = {e.id for e in result.train + result.eval}
    assert kept.isdisjoint({e.id for e in pinned} | {data[50].id})
    assert result.report["dropped_golden_leaks"] == 6


def test_curation_is_linear_enough_for_a_hundred_thousand() -> None:
    data = questions(20_000)
    result = curate(data, RetrainSettings(eval_max_examples=500))
    assert len(result.eval) == 500 and result.report["eval_not_scored"] > 1000
    assert result.report["dropped_eval_leaks"] == 0


VOCAB = ["parcel", "refund", "invoice", "late", "wrong", "address", "monday", "card", "box",
         "my", "is", "was", "not", "here", "again", "please", "help", "order"]  # fmt: skip


def variants(seed: int, n: int) -> list[str]:
    """Texts and near copies of them (a word or two changed), so many pairs sit near 0.85."""
    import random

    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        if texts and rng.random() < 0.6:
            words = rng.choice(texts).split() or [rng.choice(VOCAB)]
            for _ in range(rng.randint(0, 2)):
                words[rng.randrange(len(words))] = rng.choice(VOCAB)
            if rng.random() < 0.3:
                words.append(rng.choice(VOCAB))
        else:
            words = [rng.choice(VOCAB) for _ in range(rng.randint(0, 30))]
        texts.append(" ".join(words))
    return texts


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), threshold=st.sampled_from([0.7, 0.85, 0.9]))
def test_near_duplicate_decisions_are_exact_jaccards(seed: int, threshold: float) -> None:
    """The oracle: keep each text unless its exact Jaccard with one already kept reaches the
    threshold (brute force over all pairs). LSH only finds the candidates."""
    texts = variants(seed, 120)
    examples = [ex(i, t, "a") for i, t in enumerate(texts)]
    kept, _ = near_duplicates(examples, threshold, MinHasher(0))
    expected: list[int] = []
    for i, text in enumerate(texts):
        grams = shingles(ex(i, text, "a").text())
        if all(jaccard(grams, shingles(examples[k].text())) < threshold for k in expected):
            expected.append(i)
    assert [k.id for k in kept] == [f"s:{i}" for i in expected]


def test_texts_without_words_are_not_duplicates_of_each_other() -> None:
    assert shingles("") == frozenset() and shingles("?!") == frozenset()
    assert jaccard(shingles(""), shingles("")) == 0.0
    index = LshIndex(0.85, MinHasher(0))
    assert index.add_unless_near(shingles("")) and index.add_unless_near(shingles("…"))
