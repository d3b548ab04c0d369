"""The gate's slices: per template and label, and a regression in any large-enough slice
rejects a candidate that wins overall."""

from retrain.dataset import Example
from retrain.gate import decide, slices
from retrain.metrics import means, score_items


def item(i: int, template: str, labels: tuple[str, ...] = ()) -> Example:
    return Example(
        f"e{i}",
        ({"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"right {i}"}),
        "golden",
        template,
        labels,
    )


ITEMS = [item(i, "faq") for i in range(12)] + [
    item(12 + i, "billing", ("tone",) if i < 3 else ()) for i in range(6)
]


def test_a_regressing_slice_rejects_a_candidate_that_wins_overall() -> None:
    production = [f"right {i}" if i >= 12 else "wrong" for i in range(18)]
    candidate = [f"right {i}" if i < 12 else f"right {i} but worse" for i in range(18)]
    scores = score_items(["rouge_l", "exact_match"], ITEMS, candidate, production)
    parts = slices(ITEMS, scores, min_size=5)
    by_name = {(p.kind, p.value): p for p in parts}
    assert by_name[("template", "faq")].size == 12 and by_name[("template", "billing")].counted
    assert not by_name[("label", "tone")].counted  # 3 items: reported, cannot reject
    cand, prod = means(scores)
    overall = decide(cand, prod, "rouge_l", 0.01, 1.0, "golden")
    assert overall.promote and "on the golden set" in overall.reasons[0]

    gated = decide(cand, prod, "rouge_l", 0.01, 1.0, "golden", parts, slice_tolerance=0.05)
    assert not gated.promote
    assert any(r.startswith("slice template=billing (6 items): exact_match regresses by 1")
               for r in gated.reasons)  # fmt: skip
    assert not any("label=tone" in r for r in gated.reasons)
    assert gated.eval_set == "golden" and len(gated.slices) == 3


def test_an_item_with_two_labels_counts_in_both() -> None:
    items = [item(0, "faq", ("tone", "format")), item(1, "faq", ("tone",))]
    scores = score_items(["exact_match"], items, ["right 0", "x"], ["x", "x"])
    parts = {(p.kind, p.value): p for p in slices(items, scores, min_size=1)}
    assert parts[("label", "format")].candidate["exact_match"] == 1.0
    assert parts[("label", "tone")].candidate["exact_match"] == 0.5
