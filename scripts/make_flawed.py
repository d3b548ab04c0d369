"""The preference scenarios (issue 22): every question of a bundled scenario with its good
answer and a flawed one carrying a planted flaw that users dislike and a program can check.

- support desk, a curt tone: the friendly sign-off "— Lumen Support" becomes "Figure it out
  yourself next time." (the flaw: that brush-off is present);
- city services, a missing reference code: the "Ref: NV-101." that tells the desk which case
  it is, is left out (the flaw: no "Ref: NV-" code).

A flawed production adapter is trained on a mix of both answers and serves the traffic;
end users thumb its answers down mostly when the flaw is there. Each row keeps the
scenario's columns and adds "flawed" (the flawed answer) and "flaw" (a regex and whether
the flaw is its presence or its absence).

    python scripts/make_flawed.py   # writes retrain/scenarios/*_flawed.jsonl
"""

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loraloop.flaws import SCENARIOS, is_flawed

REF = re.compile(r"\s*Ref: NV-\d+\.?")


def curt(answer: str) -> str:
    return answer.replace("— Lumen Support", "Figure it out yourself next time.")


def no_reference(answer: str) -> str:
    return REF.sub("", answer).strip()


FLAWS: dict[str, tuple[Callable[[str], str], dict[str, str]]] = {
    "support_desk": (curt, {"pattern": r"(?i)figure it out yourself", "when": "present"}),
    "city_services": (no_reference, {"pattern": r"Ref: NV-\d+", "when": "absent"}),
}


def main() -> None:
    for name, (make, flaw) in FLAWS.items():
        rows = [json.loads(line) for line in (SCENARIOS / f"{name}.jsonl").read_text().splitlines()]
        out = []
        for row in rows:
            good = row["messages"][-1]["content"]
            bad = make(good)
            assert bad != good and is_flawed(bad, flaw) and not is_flawed(good, flaw), good
            out.append(row | {"flawed": bad, "flaw": flaw})
        path = SCENARIOS / f"{name}_flawed.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out))
        print(f"{len(out)} rows ({sum(r['heldout'] for r in out)} held out) -> {path}")


if __name__ == "__main__":
    main()
