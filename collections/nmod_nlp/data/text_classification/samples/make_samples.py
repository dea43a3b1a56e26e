"""Write the small text-classification data set that nmod ships for its demo and tests.

    python collections/nmod_nlp/data/text_classification/samples/make_samples.py [--out DIR]

Customer-support messages, written here from templates with a fixed seed, in NeMo 0.11's format: a
`sentence<TAB>label` header, then one message and its integer class per line. Three classes with
unequal frequencies (half billing, a third delivery, the rest technical), so
`--class_balancing weighted_loss` has something to balance:

    0 billing    1 delivery    2 technical problem

Dev uses some words and templates that train lacks, so a pretrained encoder has to generalise.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmod_nlp.data.samples import write_samples_main

SEED = 20240612
CLASSES = ["billing", "delivery", "technical"]

OPENERS = ["hi ,", "hello ,", "", "good morning ,", "sorry to bother you ,", "quick question :", "", "hey ,"]
CLOSERS = ["", "thanks", "please help", "can you check ?", "thank you in advance", "", "this is urgent"]
TOPICS = {
    0: {
        "train": ["i was charged twice for my order", "my invoice shows the wrong amount",
                  "why did my subscription fee go up", "i need a refund for the cancelled plan",
                  "the discount code was not applied to my bill", "please update the card on my account",
                  "i see an unknown payment on my statement", "can i get a copy of last month 's receipt",
                  "my payment was declined but the money left my account", "how do i change my billing address"],
        "dev": ["there is a strange fee on my credit card", "i want my money back for the duplicate charge",
                "the price on the invoice does not match the quote"],
    },
    1: {
        "train": ["my parcel has not arrived yet", "the courier left the package at the wrong door",
                  "tracking says delivered but nothing came", "can i change the delivery address",
                  "the box arrived crushed and wet", "when will my order be shipped",
                  "the delivery was delayed for a week", "only half of my items were in the package"],
        "dev": ["the shipment seems to be lost in transit", "nobody rang the bell and the parcel went back",
                "my order is stuck at the depot"],
    },
    2: {
        "train": ["the app crashes when i open settings", "i cannot log in after the update",
                  "the website shows an error on checkout", "my password reset email never arrives",
                  "the screen freezes after a few minutes", "the device will not connect to wifi"],
        "dev": ["the software keeps restarting on its own", "i get a blank page when i sign in",
                "bluetooth pairing fails every time"],
    },
}
DEV_TEMPLATES = ["{o} {t} , {c}", "{o} since yesterday {t} . {c}", "{o} {t} ! {c}"]
TRAIN_TEMPLATES = ["{o} {t} . {c}", "{o} {t} {c}", "{o} it seems {t} . {c}"]
SIZES = {"train": (75, 45, 30), "dev": (21, 14, 10)}


def _message(rng: random.Random, label: int, split: str) -> str:
    topics = TOPICS[label]["train"] + (TOPICS[label]["dev"] if split == "dev" else [])
    templates = TRAIN_TEMPLATES + (DEV_TEMPLATES if split == "dev" else [])
    text = rng.choice(templates).format(o=rng.choice(OPENERS), t=rng.choice(topics), c=rng.choice(CLOSERS))
    return " ".join(text.split())


def make(rng: random.Random) -> dict[str, str]:
    taken: set = set()
    files = {}
    for split, sizes in SIZES.items():
        rows = []
        for label, n in enumerate(sizes):
            while sum(1 for _, y in rows if y == label) < n:
                text = _message(rng, label, split)
                if text not in taken:
                    taken.add(text)
                    rows.append((text, label))
        rng.shuffle(rows)
        files[f"{split}.tsv"] = "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows)
    return files


def main() -> None:
    write_samples_main(__doc__, Path(__file__).parent, lambda: make(random.Random(SEED)))


if __name__ == "__main__":
    main()
