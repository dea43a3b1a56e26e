"""Write the small NER data set that nmod ships for its demo and tests.

    python collections/nmod_nlp/data/token_classification/samples/make_samples.py [--out DIR]

News-style sentences written here from templates with a fixed seed, in NeMo 0.11's format:
`text_{train,dev}.txt` (one sentence per line, space-separated words, punctuation split off as
in CoNLL-2003) and `labels_{train,dev}.txt` (one IOB2 tag per word on the matching line), with
CoNLL-2003's four entity types: PER, LOC, ORG, MISC. Entities of one to three words, so I- tags
occur; two same-type entities sometimes stand side by side ("Paris , London"), and dev uses names
and templates that train lacks, so a pretrained encoder has to generalise. Sized so the demo
(MiniLM, 2 CPU cores) trains for well under a minute.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmod_nlp.data.samples import write_samples_main

SEED = 20261126

ENTITIES = {
    "PER": {"train": ["Angela Merkel", "John Smith", "Maria", "Peter Blackburn", "Ana Lucia Ortiz", "Kenji Sato",
                      "Fatima", "David Miller", "Olga Petrova", "Luis"],
            "dev": ["Sarah Connor", "Ahmed Khan", "Tom"]},
    "LOC": {"train": ["Paris", "New York", "Germany", "Tokyo", "Brazil", "the United States", "Lagos", "Sydney",
                      "Rio de Janeiro", "Canada"],
            "dev": ["Madrid", "South Africa", "Oslo"]},
    "ORG": {"train": ["Reuters", "the United Nations", "Siemens", "Toyota", "the European Commission", "Ajax",
                      "Microsoft", "Bank of England", "Greenpeace", "FIFA"],
            "dev": ["Nokia", "the World Bank", "Interpol"]},
    "MISC": {"train": ["German", "French", "Olympic", "Christmas", "English", "World Cup", "Japanese", "Euro"],
             "dev": ["Italian", "Nobel Prize"]},
}
TRAIN_TEMPLATES = [
    "{PER} visited {LOC} on Monday .",
    "{ORG} said on Tuesday that profits rose .",
    "{PER} , a spokesman for {ORG} , declined to comment .",
    "The {MISC} team won in {LOC} .",
    "{ORG} opened a new office in {LOC} , {LOC} .",
    "Police in {LOC} arrested {PER} .",
    "{PER} met {PER} at the {MISC} summit .",
    "Shares of {ORG} fell 3 percent .",
    "{PER} told {ORG} the plan would fail .",
    "It was the first {MISC} victory since 1996 .",
    "Prices rose sharply last year .",
    "{LOC} beat {LOC} 2-1 in {LOC} .",
]
DEV_TEMPLATES = [
    "{PER} arrived in {LOC} late on Friday .",
    "{ORG} signed a deal with {ORG} .",
    "The {MISC} delegation thanked {PER} .",
    "Rain delayed the match in {LOC} .",
]
SIZES = {"train": 160, "dev": 60}


def _sentence(rng: random.Random, split: str) -> tuple[list[str], list[str]]:
    templates = TRAIN_TEMPLATES + (DEV_TEMPLATES * 2 if split == "dev" else [])
    words, tags = [], []
    for piece in rng.choice(templates).split():
        kind = piece[1:-1] if piece.startswith("{") else None
        if kind is None:
            words.append(piece)
            tags.append("O")
            continue
        names = ENTITIES[kind]["train"] + (ENTITIES[kind]["dev"] * 2 if split == "dev" else [])
        name = rng.choice(names).split()
        words += name
        tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
    return words, tags


def make(rng: random.Random) -> dict[str, str]:
    files = {}
    for split, size in SIZES.items():
        rows = [_sentence(rng, split) for _ in range(size)]
        files[f"text_{split}.txt"] = "".join(" ".join(w) + "\n" for w, _ in rows)
        files[f"labels_{split}.txt"] = "".join(" ".join(t) + "\n" for _, t in rows)
    return files


def main() -> None:
    write_samples_main(__doc__, Path(__file__).parent, lambda: make(random.Random(SEED)))


if __name__ == "__main__":
    main()
