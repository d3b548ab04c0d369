"""Writes retrain/scenarios/city_services.jsonl: a second domain, unlike the support desk.

Northvale's city hall answers residents about its services. Other intents (fees, documents,
opening hours, where to go, processing time, applying online, who is eligible, urgent cases),
other wording (formal, casual, and terse questions), and another answer style: a formal
greeting-free reply in labelled fields ending with the service's reference code. A tenth of
the service/intent pairs is held out entirely (`"heldout": true`), as in the support desk.
Deterministic: re-running writes the same file.
"""

from pathlib import Path

from scenario import write

OUT = Path(__file__).resolve().parents[1] / "retrain" / "scenarios" / "city_services.jsonl"

SERVICES = [
    # name, code, fee (EUR), documents, desk, days, online, eligible, urgent
    (
        "passport renewal",
        "NV-101",
        65,
        "your old passport and a photo",
        "Desk 3",
        10,
        True,
        "citizens of any age",
        "a 2-day express service for EUR 40 more",
    ),
    (
        "residents parking permit",
        "NV-102",
        45,
        "your car registration and a lease",
        "Desk 7",
        3,
        True,
        "households inside the old town ring",
        "a 24-hour paper permit",
    ),
    (
        "building permit",
        "NV-103",
        250,
        "site plans signed by an architect",
        "Floor 2, Room 14",
        40,
        False,
        "owners of the plot",
        "no express route; call the planning office",
    ),
    (
        "dog licence",
        "NV-104",
        30,
        "the dog's chip number and vaccination card",
        "Desk 5",
        2,
        True,
        "residents with a chipped dog",
        "a same-day licence at Desk 5",
    ),
    (
        "birth certificate copy",
        "NV-105",
        12,
        "an ID and the date of birth",
        "Desk 1",
        1,
        True,
        "the person named or a parent",
        "a copy while you wait at Desk 1",
    ),
    (
        "marriage booking",
        "NV-106",
        120,
        "both IDs and two witnesses' names",
        "Floor 1, Room 4",
        21,
        False,
        "couples over 18",
        "a short-notice slot on Fridays",
    ),
    (
        "bulky waste pickup",
        "NV-107",
        25,
        "a list of the items",
        "the phone line 0800-1107",
        5,
        True,
        "every household",
        "an extra Saturday run in spring",
    ),
    (
        "market stall licence",
        "NV-108",
        80,
        "a trade registration and a stall plan",
        "Desk 9",
        14,
        True,
        "registered traders",
        "a one-day guest pitch for EUR 15",
    ),
    (
        "moving registration",
        "NV-109",
        0,
        "an ID and the new lease",
        "Desk 2",
        1,
        True,
        "anyone moving into Northvale",
        "registration on the spot at Desk 2",
    ),
    (
        "street party permit",
        "NV-110",
        35,
        "a map of the street and neighbours' consent",
        "Floor 2, Room 9",
        20,
        False,
        "groups of at least five households",
        "no express route; apply three weeks ahead",
    ),
    (
        "library card",
        "NV-111",
        0,
        "an ID and proof of address",
        "the Central Library desk",
        1,
        True,
        "residents and students",
        "a temporary card the same day",
    ),
    (
        "tree felling permit",
        "NV-112",
        60,
        "photos of the tree and a site sketch",
        "Floor 2, Room 14",
        30,
        True,
        "owners of the land",
        "an emergency check within 48 hours",
    ),
]


def intents(s: tuple) -> list[tuple[list[str], str]]:  # type: ignore[type-arg]
    name, code, fee, docs, desk, days, online, eligible, urgent = s
    ref = f"Ref: {code}."
    fee_text = "free of charge" if fee == 0 else f"EUR {fee}"
    return [
        (
            [f"What is the fee for a {name}?", f"how much is a {name}", f"{name} cost?"],
            f"Fee: {fee_text}, payable by card at the desk. {ref}",
        ),
        (
            [
                f"Which documents do I need for a {name}?",
                f"what do i bring for my {name}",
                f"{name} paperwork?",
            ],
            f"Documents: {docs}. Originals only. {ref}",
        ),
        (
            [
                f"Where do I go for a {name}?",
                f"which office handles the {name}",
                f"{name} location?",
            ],
            f"Where: {desk}, City Hall, Market Square 1. {ref}",
        ),
        (
            [
                f"How long does a {name} take?",
                f"when will my {name} be ready",
                f"{name} processing time?",
            ],
            f"Processing: {days} working day{'s' if days != 1 else ''}. {ref}",
        ),
        (
            [
                f"Can I apply for a {name} online?",
                f"is there an online form for the {name}",
                f"{name} online?",
            ],
            (
                f"Online: yes, at northvale.example/{code.lower()}. {ref}"
                if online
                else f"Online: no, apply in person at {desk}. {ref}"
            ),
        ),
        (
            [
                f"Who can apply for a {name}?",
                f"am i eligible for a {name}",
                f"{name} eligibility?",
            ],
            f"Eligible: {eligible}. {ref}",
        ),
        (
            [
                f"What if I need a {name} urgently?",
                f"can i get a {name} faster",
                f"urgent {name}?",
            ],
            f"Urgent: {urgent}. {ref}",
        ),
        (
            [
                f"When is the office for a {name} open?",
                f"opening hours for {name}",
                f"{name} hours?",
            ],
            f"Hours: Monday to Friday 8:30-16:00, Thursday until 19:00 ({desk}). {ref}",
        ),
    ]


def main() -> None:
    write(OUT, [(x[0], t) for x in SERVICES for t in intents(x)], "city-services", seed=11)


if __name__ == "__main__":
    main()
