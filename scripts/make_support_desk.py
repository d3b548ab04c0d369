"""Writes retrain/scenarios/support_desk.jsonl: the demo's support-desk scenario.

Lumen Lamps is a fictional lamp maker; its support desk answers in one voice (short, exact,
signed "— Lumen Support"). Questions about twelve products and eight topics, each asked a
few ways; a tenth of the product/topic pairs is held out entirely (`"heldout": true`) so the
demo measures answers to questions the adapter never saw. Deterministic: re-running writes
the same file.
"""

from pathlib import Path

from scenario import write

OUT = Path(__file__).resolve().parents[1] / "retrain" / "scenarios" / "support_desk.jsonl"
SIGN = "— Lumen Support"

PRODUCTS = [
    # name, price, warranty years, bulb, watts, colours, dimmable, assembly
    ("Aurora desk lamp", 49, 2, "E14", 25, "white and graphite", True, False),
    ("Beacon floor lamp", 129, 3, "E27", 60, "black and brass", True, True),
    ("Cinder reading light", 35, 1, "G9", 20, "sand and slate", False, False),
    ("Drift pendant", 89, 2, "E27", 40, "oak and walnut", True, True),
    ("Ember wall sconce", 59, 2, "E14", 25, "copper and matte black", False, True),
    ("Fjord table lamp", 75, 3, "E27", 40, "fjord blue and chalk", True, False),
    ("Glimmer string lights", 25, 1, "LED strip", 6, "warm white", True, False),
    ("Halo ring light", 69, 2, "integrated LED", 18, "white", True, False),
    ("Isle bedside lamp", 39, 1, "E14", 25, "sage and cream", True, False),
    ("Juniper arc lamp", 199, 5, "E27", 60, "brushed steel", True, True),
    ("Kestrel clip light", 29, 1, "GU10", 7, "black and red", False, False),
    ("Lantern outdoor light", 99, 3, "E27", 40, "anthracite", False, True),
]


def topics(p: tuple) -> list[tuple[list[str], str]]:  # type: ignore[type-arg]
    name, price, years, bulb, watts, colours, dimmable, assembly = p
    return [
        (
            [
                f"How much does the {name} cost?",
                f"What is the price of the {name}?",
                f"price of {name}?",
            ],
            f"The {name} costs ${price}. Shipping is free on orders over $50. {SIGN}",
        ),
        (
            [
                f"What warranty comes with the {name}?",
                f"How long is the {name} guaranteed?",
                f"Is the {name} under warranty?",
            ],
            f"The {name} has a {years}-year warranty on parts and labour. {SIGN}",
        ),
        (
            [
                f"What bulb does the {name} take?",
                f"Which bulb fits the {name}?",
                f"bulb type for {name}",
            ],
            f"The {name} takes a {bulb} bulb, {watts} W at most. {SIGN}",
        ),
        (
            [
                f"Can I return my {name}?",
                f"How do I send back the {name}?",
                f"I want to return the {name}.",
            ],
            f"Yes: return the {name} within 30 days in its original box via "
            f"lumenlamps.example/returns. {SIGN}",
        ),
        (
            [
                f"Which colours does the {name} come in?",
                f"What colors is the {name} available in?",
                f"{name} colour options?",
            ],
            f"The {name} comes in {colours}. {SIGN}",
        ),
        (
            [f"Is the {name} dimmable?", f"Can I dim the {name}?", f"does the {name} dim?"],
            (
                f"Yes, the {name} dims with any trailing-edge dimmer. {SIGN}"
                if dimmable
                else f"No, the {name} is not dimmable. {SIGN}"
            ),
        ),
        (
            [
                f"Does the {name} need assembly?",
                f"Do I have to put the {name} together?",
                f"how to assemble the {name}?",
            ],
            (
                f"The {name} needs about 10 minutes of assembly; a screwdriver is included. {SIGN}"
                if assembly
                else f"No assembly: the {name} arrives ready to use. {SIGN}"
            ),
        ),
        (
            [
                f"How long does delivery of the {name} take?",
                f"When will my {name} arrive?",
                f"shipping time for the {name}?",
            ],
            f"The {name} ships in 1 business day and arrives in 2 to 4 days. {SIGN}",
        ),
    ]


def main() -> None:
    write(OUT, [(x[0], t) for x in PRODUCTS for t in topics(x)], "support-desk", seed=7)


if __name__ == "__main__":
    main()
