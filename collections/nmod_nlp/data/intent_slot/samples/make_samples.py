"""Write the small joint intent-and-slot data set that nmod ships for its demo and tests.

    python collections/nmod_nlp/data/intent_slot/samples/make_samples.py [--out DIR]

Assistant queries, written here from templates with a fixed seed, in NeMo 0.11's format:

- `dict.intents.csv`, `dict.slots.csv`: one label per line, the line index is the id; the "no
  slot" label `O` is the last line of dict.slots.csv, as in NeMo's ATIS and SNIPS conversions;
- `{train,test}.tsv`: a `sentence<TAB>label` header, then one query and its intent id per line;
- `{train,test}_slots.tsv`: no header; the slot id of each word of the same line, space-separated.

Slots are BIO tags (`B-city` starts a city, `I-city` continues it). Test uses cities, artists and
phrasings that train lacks, so a pretrained encoder has to generalise.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmod_nlp.data.samples import write_samples_main

SEED = 20240614
INTENTS = ["get_weather", "book_flight", "play_music", "set_alarm"]
SLOT_TYPES = ["city", "date", "time", "artist"]
SLOTS = [f"{bio}-{t}" for t in SLOT_TYPES for bio in ("B", "I")] + ["O"]

FILLERS = {
    "city": {"train": ["paris", "new york", "berlin", "san francisco", "tokyo", "madrid", "los angeles"],
             "test": ["rome", "buenos aires", "oslo"]},
    "date": {"train": ["today", "tomorrow", "next monday", "on friday", "this weekend"],
             "test": ["tomorrow", "next tuesday", "on sunday"]},
    "time": {"train": ["seven am", "six thirty", "noon", "eight pm", "nine fifteen"],
             "test": ["five am", "ten thirty", "midnight"]},
    "artist": {"train": ["the beatles", "adele", "miles davis", "taylor swift", "bob marley", "frank sinatra",
                         "daft punk"],
               "test": ["queen", "norah jones", "the rolling stones"]},
}
TEMPLATES = {
    "get_weather": {"train": ["what is the weather in {city} {date}", "will it rain in {city} {date}",
                              "how hot is it in {city}", "weather forecast for {city}", "is it sunny {date}"],
                    "test": ["do i need an umbrella in {city} {date}", "how cold will it be {date}"]},
    "book_flight": {"train": ["book a flight to {city} {date}", "i need a ticket from {city} to {city}",
                              "find flights to {city}", "fly me to {city} {date} at {time}"],
                    "test": ["get me a plane ticket to {city} {date}", "any flights from {city} to {city}"]},
    "play_music": {"train": ["play some {artist}", "put on a song by {artist}", "i want to hear {artist}",
                             "play music by {artist}", "play {artist} {date}", "play {artist} in the {city} hotel",
                             "shuffle songs by {artist}"],
                   "test": ["start the {artist} playlist", "could you play {artist}"]},
    "set_alarm": {"train": ["wake me up at {time}", "set an alarm for {time} {date}", "alarm at {time} please",
                            "set my alarm to {time}"],
                  "test": ["i have to get up at {time} {date}", "remind me at {time}"]},
}
SIZES = {"train": 100, "test": 40}


def _query(rng: random.Random, intent: str, split: str) -> tuple[list[str], list[str]]:
    templates = TEMPLATES[intent]["train"] + (TEMPLATES[intent]["test"] * 2 if split == "test" else [])
    words, slots = [], []
    for token in rng.choice(templates).split():
        if token.startswith("{"):
            kind = token[1:-1]
            pool = FILLERS[kind]["train"] + (FILLERS[kind]["test"] * 2 if split == "test" else [])
            value = rng.choice(pool).split()
            words += value
            slots += [f"B-{kind}"] + [f"I-{kind}"] * (len(value) - 1)
        else:
            words.append(token)
            slots.append("O")
    return words, slots


def make(rng: random.Random) -> dict[str, str]:
    files = {"dict.intents.csv": "".join(i + "\n" for i in INTENTS), "dict.slots.csv": "".join(s + "\n" for s in SLOTS)}
    slot_id = {s: i for i, s in enumerate(SLOTS)}
    for split, n in SIZES.items():
        rows, seen = [], set()
        while len(rows) < n:
            intent = INTENTS[len(rows) % len(INTENTS)]
            words, slots = _query(rng, intent, split)
            if " ".join(words) in seen:
                continue
            seen.add(" ".join(words))
            rows.append((words, INTENTS.index(intent), slots))
        rng.shuffle(rows)
        files[f"{split}.tsv"] = "sentence\tlabel\n" + "".join(f"{' '.join(w)}\t{i}\n" for w, i, _ in rows)
        files[f"{split}_slots.tsv"] = "".join(" ".join(str(slot_id[s]) for s in slots) + "\n" for _, _, slots in rows)
    return files


def main() -> None:
    write_samples_main(__doc__, Path(__file__).parent, lambda: make(random.Random(SEED)))


if __name__ == "__main__":
    main()
