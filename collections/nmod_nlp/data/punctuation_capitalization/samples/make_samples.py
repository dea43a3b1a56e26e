"""Write the small punctuation-and-capitalization data set that nmod ships for its demo and tests.

    python collections/nmod_nlp/data/punctuation_capitalization/samples/make_samples.py [--out DIR]

Short conversational texts, written here from templates with a fixed seed, in NeMo 0.11's format:
`text_{train,dev}.txt` holds one lower-cased text per line with no punctuation, and
`labels_{train,dev}.txt` one label per word on the same line: the punctuation that follows the word
(`O` none, `,` `.` `?`), then its capitalization (`O` lower case, `U` capitalized). So the text

    Hello, Anna. How are you?

is stored as `hello anna how are you` with labels `,U .U OU OO ?O`. Sentence starts, names, cities
and weekdays are capitalized; questions end in `?`, statements in `.`, and greetings and yes/no are
followed by a comma. Dev uses names, cities and sentences that train lacks.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmod_nlp.data.samples import write_samples_main

SEED = 20240613
NAMES = {"train": ["anna", "peter", "maria", "james", "sofia", "david", "laura", "thomas"],
         "dev": ["emma", "lucas", "nina"]}
CITIES = {"train": ["paris", "london", "berlin", "madrid", "rome", "tokyo", "chicago"],
          "dev": ["vienna", "dublin", "boston"]}
DAYS = ["monday", "tuesday", "friday", "sunday"]
# {name} {city} {day} and "i" are capitalized; every other word is lower case unless it starts a sentence.
STATEMENTS = {
    "train": ["i will meet {name} in {city} on {day}", "the train to {city} leaves at noon",
              "we had dinner with {name} last night", "my sister lives in {city}",
              "the meeting moved to {day}", "{name} sent me the report", "it is raining again",
              "i think the shop is closed", "the flight from {city} was late", "we bought new shoes"],
    "dev": ["{name} called me from {city}", "the museum opens on {day}", "i left my keys at home"],
}
QUESTIONS = {
    "train": ["how are you", "where is {name}", "did you see {name} on {day}", "what time is it",
              "can you call me later", "is the hotel in {city} expensive", "when does the bus leave",
              "do you like {city}", "why is the door open", "who is coming on {day}"],
    "dev": ["how was your trip to {city}", "are you free on {day}", "what did {name} say"],
}
SIZES = {"train": 120, "dev": 40}
OPENERS = ["hello", "yes", "no", "well", "thanks", "sorry"]  # followed by a comma


def _sentence(rng: random.Random, split: str, question: bool) -> list[tuple[str, str, str]]:
    """(word, punct, capit) triples of one sentence, ending in `?` or `.`."""
    pool = (QUESTIONS if question else STATEMENTS)
    template = rng.choice(pool["train"] + (pool["dev"] * 2 if split == "dev" else []))
    fill = {"name": rng.choice(NAMES[split]), "city": rng.choice(CITIES[split]), "day": rng.choice(DAYS)}
    words = []
    if rng.random() < 0.3:
        words.append((rng.choice(OPENERS), ",", False))
    for token in template.split():
        proper = token.startswith("{") or token == "i"  # names, places, days and "I"
        for word in token.format(**fill).split():
            words.append((word, "O", proper))
    words[-1] = (words[-1][0], "?" if question else ".", words[-1][2])
    return [(w, p, "U" if (i == 0 or proper) else "O") for i, (w, p, proper) in enumerate(words)]


def make(rng: random.Random, sizes: dict[str, int]) -> dict[str, str]:
    files = {}
    for split, n in sizes.items():
        texts, labels = [], []
        while len(texts) < n:
            words = [t for _ in range(rng.choice([1, 2, 2, 3])) for t in _sentence(rng, split, rng.random() < 0.45)]
            text = " ".join(w for w, _, _ in words)
            if text in texts:
                continue
            texts.append(text)
            labels.append(" ".join(p + c for _, p, c in words))
        files[f"text_{split}.txt"] = "".join(t + "\n" for t in texts)
        files[f"labels_{split}.txt"] = "".join(lab + "\n" for lab in labels)
    return files


def main() -> None:
    write_samples_main(__doc__, Path(__file__).parent, lambda: make(random.Random(SEED), SIZES))


if __name__ == "__main__":
    main()
