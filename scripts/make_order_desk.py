"""Writes retrain/scenarios/order_desk.jsonl: an agent domain, where the right answer is
usually a tool call.

Acme Shop's order desk (the `order-agent` template, whose tools each row carries): a customer
asks where an order is (`lookup_order`), to cancel it (`cancel_order`), or for a refund and
why (`refund_order` with a reason of damaged, late, wrong_item or changed_mind), each asked
three ways with the order id somewhere in the sentence; a few questions about policy are
answered in text, with no call. Every order/intent pair is its own topic and a tenth of them
is held out entirely, as in the other scenarios: a held-out order id was never seen, so
scoring it measures whether the model learned to pick the function and copy the id, not the
answers. Deterministic: re-running writes the same file.
"""

import json
import random
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "retrain" / "scenarios" / "order_desk.jsonl"
TEMPLATE = "order-agent"
SEED = 23

REASONS = {
    "damaged": ["it arrived broken", "the box was crushed and it is damaged", "it is cracked"],
    "late": ["it came two weeks late", "it arrived far too late", "the delivery was very late"],
    "wrong_item": ["you sent the wrong item", "this is not what I ordered", "the wrong size came"],
    "changed_mind": ["I changed my mind", "I no longer need it", "I do not want it anymore"],
}
POLICY = [
    (
        [
            "How long do I have to return something?",
            "what's your return window",
            "Can I still return after a month?",
        ],
        "You can return any item within 30 days of delivery, unused and in its original box.",
    ),
    (
        [
            "Do you ship abroad?",
            "can you deliver to Canada",
            "Is international shipping available?",
        ],
        "We ship to the EU, the UK, the US and Canada; delivery abroad takes 5 to 9 working days.",
    ),
    (
        ["How much is shipping?", "what does delivery cost", "Is shipping free?"],
        "Shipping is free over 50 euros; below that it costs 4.90 euros per order.",
    ),
    (
        ["When are you open?", "what are your support hours", "Can I call you on Sunday?"],
        "Our order desk answers Monday to Saturday, 8:00 to 20:00 CET; on Sundays write to us.",
    ),
    (
        [
            "How do I change my delivery address?",
            "can I update the shipping address",
            "I moved, where do I change my address?",
        ],
        "Change the address in Account > Addresses before the order ships; after that, ask us.",
    ),
    (
        [
            "Which payment methods do you take?",
            "can I pay with PayPal",
            "Do you accept credit cards?",
        ],
        "We take Visa, Mastercard, PayPal and bank transfer; invoices for business accounts.",
    ),
]


def tools() -> list[dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "prompt_templates" / f"{TEMPLATE}.yaml").read_text())
    return list(spec["tools"])


def call(n: int, name: str, arguments: dict[str, str]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {"id": f"call_{n}", "type": "function", "function": function}


def topics(rng: random.Random) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(subject, the three ways it is asked, the assistant's turn) for every topic."""
    out = []
    for n in range(32):
        order = f"A-{rng.randint(1000, 9999)}"
        out.append(
            (
                order,
                [
                    f"Where is my order {order}?",
                    f"hi, any news on {order}? it still hasn't arrived",
                    f"Can you check the status of order {order} please",
                ],
                {"content": "", "tool_calls": [call(n, "lookup_order", {"order_id": order})]},
            )
        )
        if n % 2:
            asks = [
                f"Please cancel order {order}.",
                f"i want to cancel {order} before it ships",
                f"Cancel my order {order}, I ordered by mistake",
            ]
            turn = call(n, "cancel_order", {"order_id": order})
        else:
            reason = sorted(REASONS)[n // 2 % len(REASONS)]
            why = REASONS[reason]
            asks = [
                f"I want a refund for {order}: {why[0]}.",
                f"refund order {order} please, {why[1]}",
                f"Order {order}: {why[2]}, can I get my money back?",
            ]
            turn = call(n, "refund_order", {"order_id": order, "reason": reason})
        out.append((order, asks, {"content": "", "tool_calls": [turn]}))
    out += [("policy", asks, {"content": answer}) for asks, answer in POLICY]
    return out


def main() -> None:
    rng = random.Random(SEED)
    all_topics = topics(rng)
    held = set(rng.sample(range(len(all_topics)), k=len(all_topics) // 10))
    declared = tools()
    rows = [
        {
            "messages": [
                {"role": "user", "content": ask},
                {"role": "assistant", **turn},
            ],
            "tools": declared,
            "template": TEMPLATE,
            "product": subject,
            "heldout": n in held,
        }
        for n, (subject, asks, turn) in enumerate(all_topics)
        for ask in asks
    ]
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(rows)} rows ({sum(r['heldout'] for r in rows)} held out) -> {OUT}")


if __name__ == "__main__":
    main()
