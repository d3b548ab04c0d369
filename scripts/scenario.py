"""Shared by the scenario generators: questions asked several ways, one answer each, a
tenth of the subject/topic pairs held out entirely, written as chat JSONL."""

import json
import random
from pathlib import Path

Topic = tuple[list[str], str]  # the ways a question is asked, the answer


def write(out: Path, pairs: list[tuple[str, Topic]], template: str, seed: int) -> None:
    """`pairs`: (subject, topic) for every subject and topic; deterministic for `seed`."""
    rng = random.Random(seed)
    held = set(rng.sample(range(len(pairs)), k=len(pairs) // 10))
    rows = [
        {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ],
            "template": template,
            "product": subject,
            "heldout": n in held,
        }
        for n, (subject, (questions, answer)) in enumerate(pairs)
        for question in questions
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} rows ({sum(r['heldout'] for r in rows)} held out) -> {out}")
