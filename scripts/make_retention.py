"""Writes retrain/retention/general.jsonl: general prompts outside any customer's domain.

A retraining run asks them of the base model and of the candidate adapter: an adapter that
answers its domain better but has lost what the base model knew (it signs every answer as
the support desk, it no longer adds two numbers, it ignores "answer in one word") shows it
here. The base model's own answers are the reference, so the set needs no labels and suits
any base model. Four kinds, about a dozen each: arithmetic, general knowledge, instruction
following, format following. Written for the project; deterministic: re-running writes the
same file.
"""

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "retrain" / "retention" / "general.jsonl"

KNOWLEDGE = [
    "What is the capital of France?",
    "How many days are there in a leap year?",
    "What gas do plants take in from the air to make food?",
    "Who wrote the play Romeo and Juliet?",
    "What is the boiling point of water at sea level in degrees Celsius?",
    "Which planet is closest to the Sun?",
    "How many continents are there on Earth?",
    "What is the largest ocean on Earth?",
    "What is the chemical symbol for gold?",
    "In which country are the pyramids of Giza?",
    "How many legs does a spider have?",
    "What is the freezing point of water in degrees Fahrenheit?",
    "What language is mainly spoken in Brazil?",
]

INSTRUCTIONS = [
    "Give me three tips for sleeping better.",
    "Explain what a noun is to a ten-year-old.",
    "Write one sentence describing the colour blue to someone who cannot see.",
    "Suggest a name for a small bakery.",
    "Summarise in one sentence: the meeting moved from Monday to Wednesday because the "
    "room was booked.",
    "Translate 'good morning' into Spanish.",
    "Rewrite this sentence politely: give me the report now.",
    "What is the opposite of 'ancient'?",
    "Write a short thank-you note to a neighbour who watered my plants.",
    "Describe a cat in exactly five words.",
    "Give two reasons to drink water during the day.",
    "Correct the spelling: 'I recieved the pakage yesterday.'",
    "Tell me a fun fact about octopuses.",
]

FORMATS = [
    "List three primary colours as a numbered list.",
    'Reply with a JSON object with the keys "city" and "country" for Tokyo.',
    "Answer with yes or no only: is ice cold?",
    "Write the word 'hello' in capital letters and nothing else.",
    "Give me a comma-separated list of the first five even numbers.",
    "Name one fruit. Answer with a single word.",
    "Write a haiku about rain.",
    "Put these words in alphabetical order: pear, apple, mango.",
    "Answer in one sentence: why is the sky blue?",
    "Write a markdown table with two columns, Animal and Sound, and two rows.",
    "Give the date 3 March 2024 in the format YYYY-MM-DD.",
    "Reply with only the number of letters in the word 'planet'.",
]


def arithmetic(rng: random.Random, count: int) -> list[str]:
    prompts = []
    for i in range(count):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        op = ["+", "-", "*"][i % 3]
        words = {"+": "plus", "-": "minus", "*": "times"}[op]
        prompts.append(
            f"What is {a} {op} {b}? Answer with the number."
            if i % 2
            else f"Calculate {a} {words} {b}."
        )
    return prompts


def main(out_path: Path = OUT) -> None:
    rng = random.Random(0)
    kinds = {
        "arithmetic": arithmetic(rng, 12),
        "knowledge": KNOWLEDGE,
        "instructions": INSTRUCTIONS,
        "format": FORMATS,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w") as out:
        for kind, prompts in kinds.items():
            for i, prompt in enumerate(prompts, start=1):
                row = {
                    "id": f"{kind}-{i:02d}",
                    "category": kind,
                    "messages": [{"role": "user", "content": prompt}],
                }
                out.write(json.dumps(row) + "\n")
    print(f"wrote {sum(len(p) for p in kinds.values())} prompts to {out_path}")


if __name__ == "__main__":
    main()
