"""Writes retrain/scenarios/it_helpdesk.jsonl: a third domain, unlike the other two.

Orbis Logistics' internal IT helpdesk answers employees about the tools they use. Other
intents (a problem to fix, access to request, setup on a new device, a security rule, who
owns it, a known outage, the cost to the team, data retention), questions written as
complaints and chat messages rather than queries, and another answer style: a friendly
first sentence, then numbered steps, then the ticket queue to use if that did not help —
two to three times longer than the other domains' answers. A tenth of the tool/intent pairs
is held out entirely (`"heldout": true`), as in the others. Deterministic: re-running
writes the same file.
"""

from pathlib import Path

from scenario import write

OUT = Path(__file__).resolve().parents[1] / "retrain" / "scenarios" / "it_helpdesk.jsonl"

TOOLS = [
    # name, queue, owner, fix, setup, rule, cost (EUR/user/month), retention
    (
        "VPN client",
        "NET",
        "the network team",
        "switch to the Backup gateway in Settings",
        "install Orbis Connect from the Software Center",
        "never share a session token",
        0,
        "connection logs for 90 days",
    ),
    (
        "email",
        "MSG",
        "the messaging team",
        "clear the Outbox and restart Outlook",
        "add your account with the Orbis profile",
        "never forward mail to a private address",
        0,
        "mail for 7 years",
    ),
    (
        "printer fleet",
        "PRN",
        "facilities IT",
        "release the job again at the printer with your badge",
        "add the FollowMe queue under Printers",
        "collect confidential prints at once",
        3,
        "print logs for 30 days",
    ),
    (
        "password manager",
        "IAM",
        "the identity team",
        "sync the vault from the tray icon",
        "enrol with the invitation mail and set a master password",
        "never reuse the master password",
        4,
        "vault history for 1 year",
    ),
    (
        "laptop",
        "EUC",
        "end-user computing",
        "run Check Health from the Orbis Toolbox",
        "sign in with your badge number on first boot",
        "lock the screen when you leave it",
        0,
        "local files are never backed up",
    ),
    (
        "video calls",
        "COL",
        "the collaboration team",
        "rejoin the call with audio from the browser",
        "install Orbis Meet and test your headset",
        "never record without consent",
        6,
        "recordings for 60 days",
    ),
    (
        "shared drive",
        "STO",
        "the storage team",
        "map the drive again with the Reconnect shortcut",
        "request the folder in the portal and restart",
        "keep customer data in the Restricted folder",
        2,
        "deleted files for 30 days",
    ),
    (
        "expense app",
        "FIN",
        "finance systems",
        "attach the receipt again as a PDF",
        "open Expensa and link your corporate card",
        "submit within 60 days of purchase",
        5,
        "claims for 10 years",
    ),
    (
        "door badge",
        "SEC",
        "site security",
        "hold the badge flat on the reader for two seconds",
        "collect it at reception with your ID",
        "never lend your badge",
        0,
        "door logs for 6 months",
    ),
    (
        "office Wi-Fi",
        "NET",
        "the network team",
        "forget the Orbis-Staff network and join again",
        "join Orbis-Staff with your usual sign-in",
        "use Orbis-Guest for visitors only",
        0,
        "connection logs for 90 days",
    ),
    (
        "mobile phone",
        "MOB",
        "mobile services",
        "restart it and update the Intune app",
        "enrol it in Intune Company Portal",
        "keep a PIN of at least six digits",
        18,
        "device records for 1 year",
    ),
    (
        "CRM",
        "CRM",
        "the sales systems team",
        "clear the browser cache and sign in again",
        "ask your manager to approve a seat in the portal",
        "export customer lists only with approval",
        35,
        "contact history for 5 years",
    ),
]


def upper(text: str) -> str:
    """The first letter in capitals, the rest as written (`str.capitalize` lowers names)."""
    return text[:1].upper() + text[1:]


def intents(t: tuple) -> list[tuple[list[str], str]]:  # type: ignore[type-arg]
    name, queue, owner, fix, setup, rule, cost, retention = t
    ticket = f"Still stuck? Open a ticket in queue {queue}."
    return [
        (
            [
                f"my {name} stopped working, what do i do",
                f"Help, the {name} is broken again!",
                f"{name} not working since this morning",
            ],
            f"Sorry about that! Try this: 1. Save your work. 2. {upper(fix)}. "
            f"3. Check again after a minute. {ticket}",
        ),
        (
            [
                f"how do I set up the {name} on a new machine?",
                f"new starter here - how do i get the {name}",
                f"{name} setup steps?",
            ],
            f"Welcome aboard! To set it up: 1. Make sure you are on the Orbis network. "
            f"2. {upper(setup)}. 3. Sign in with your Orbis account. {ticket}",
        ),
        (
            [
                f"who looks after the {name}?",
                f"which team owns the {name} please",
                f"{name} owner?",
            ],
            f"Good question! The {name} is run by {owner}. 1. Check the status page first. "
            f"2. Then reach them through the portal. {ticket}",
        ),
        (
            [
                f"any rules I should know about the {name}?",
                f"is there a security policy for the {name}",
                f"{name} dos and donts?",
            ],
            f"Yes, one rule matters most: {rule}. 1. Read the policy in the portal. "
            f"2. Report anything odd at once. {ticket}",
        ),
        (
            [
                f"does the {name} cost my team anything?",
                f"who pays for the {name}",
                f"{name} price per user?",
            ],
            (
                f"Good news: the {name} is free for every team. 1. No approval is needed. "
                f"2. Request it in the portal. {ticket}"
                if cost == 0
                else f"It costs EUR {cost} per user per month, billed to your team. "
                f"1. Get your manager's approval. 2. Request it in the portal. {ticket}"
            ),
        ),
        (
            [
                f"how long do you keep data from the {name}?",
                f"is my {name} data deleted at some point",
                f"{name} retention?",
            ],
            f"We keep {retention}. 1. Ask before deleting anything yourself. "
            f"2. Legal holds can extend this. {ticket}",
        ),
        (
            [
                f"is the {name} down right now?",
                f"anyone else having {name} problems today",
                f"{name} outage?",
            ],
            f"Let's check together: 1. Open status.orbis.example and look for {name}. "
            f"2. If it shows red, {owner} is on it. 3. If green, {fix}. {ticket}",
        ),
        (
            [
                f"can I get admin rights for the {name}?",
                f"i need elevated access to the {name}",
                f"{name} admin access?",
            ],
            f"Admin rights need a reason. 1. Ask your manager to approve it. 2. {upper(owner)} "
            f"grants it for 30 days. 3. Renew it in the portal. {ticket}",
        ),
    ]


def main() -> None:
    write(OUT, [(x[0], t) for x in TOOLS for t in intents(x)], "it-helpdesk", seed=23)


if __name__ == "__main__":
    main()
