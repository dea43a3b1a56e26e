"""Write the small GLUE-format data sets that nmod ships for its demos and tests.

    python collections/nmod_nlp/data/glue/samples/make_samples.py [--out DIR]

Every sentence is made here from templates with a fixed seed (none is taken from GLUE), and every
file has the exact layout the GLUE download script gives the real task: CoLA without a header, MRPC
starting with a UTF-8 BOM, STS-B's ten columns with the score last, MNLI's parse columns and its
matched/mismatched dev and test files, and test files with an index column first and no label.

- SST-2 (200 train / 60 dev / 20 test): film-review snippets in SST's lower-cased, space-tokenized
  style, positive or negative; dev uses held-out words and templates, so a pretrained encoder has to
  generalise, and a small one fine-tuned for a few epochs moves dev accuracy well above chance.
- CoLA, MRPC, STS-B, MNLI: a few dozen rows each, to exercise the readers and recipes.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmod_nlp.data.samples import write_samples_main

SEED = 20240611

# ---- SST-2 ---------------------------------------------------------------------------------------
SUBJECTS = ["the film", "this movie", "the script", "the cast", "the director 's latest", "the story", "the ending",
            "the central performance", "the soundtrack", "the dialogue", "the second half", "the animation",
            "this sequel", "the screenplay", "the documentary", "the comedy", "the thriller", "the picture"]
POSITIVE = ["charming", "moving", "clever", "delightful", "gripping", "funny", "heartfelt", "smart", "touching",
            "inventive", "warm", "thrilling", "witty", "gorgeous", "engaging", "tender", "lively", "hilarious"]
NEGATIVE = ["tedious", "clumsy", "dull", "lifeless", "predictable", "overlong", "incoherent", "bland", "shallow",
            "forgettable", "tiresome", "sloppy", "pointless", "lazy", "joyless", "muddled", "flat", "grating"]
# Held out of training: dev sentences use these words too, so dev is not a memory test.
POSITIVE_DEV = ["wonderful", "lovely", "superb", "enchanting", "absorbing", "sparkling"]
NEGATIVE_DEV = ["awful", "boring", "dreary", "sluggish", "mediocre", "clunky"]
INTENSIFIERS = ["", "quite ", "really ", "remarkably ", "thoroughly ", "often ", "consistently "]
POS_CLAUSES = ["you 'll want to see it twice", "the audience cheered at the end", "it earns every laugh",
               "it never loses its nerve", "the actors seem to be having a ball", "it left me grinning",
               "it rewards patience", "every scene feels alive"]
NEG_CLAUSES = ["i checked my watch more than once", "the jokes land with a thud", "nothing here sticks",
               "it wastes a capable cast", "the plot goes nowhere", "it feels twice its length",
               "you can guess every twist", "the characters never come alive"]
TRAIN_TEMPLATES = [
    "{subj} is {int}{adj} .",
    "{subj} is {int}{adj} , and {clause} .",
    "a {adj} piece of work ; {clause} .",
    "{subj} feels {int}{adj} from start to finish .",
    "it 's a {adj} film , and {clause} .",
    "{clause} -- {subj} is {adj} .",
]
DEV_TEMPLATES = [
    "what a {adj} experience : {subj} is {int}{adj2} .",
    "{subj} turns out {int}{adj} , and {clause} .",
    "all in all , {subj} is {adj} and {adj2} .",
]


def _sst_sentence(rng: random.Random, positive: bool, templates: list[str], words: list[str]) -> str:
    clauses = POS_CLAUSES if positive else NEG_CLAUSES
    adj, adj2 = rng.sample(words, 2)
    return rng.choice(templates).format(subj=rng.choice(SUBJECTS), int=rng.choice(INTENSIFIERS), adj=adj,
                                        adj2=adj2, clause=rng.choice(clauses))


def _unique(rng: random.Random, make, n: int, taken: set) -> list:
    out = []
    while len(out) < n:
        s = make()
        if s not in taken:
            taken.add(s)
            out.append(s)
    return out


def sst2(rng: random.Random) -> dict[str, str]:
    taken: set = set()

    def rows(n: int, dev: bool) -> list[tuple[str, int]]:
        out = []
        for label in (0, 1):
            words = (POSITIVE if label else NEGATIVE) + ((POSITIVE_DEV if label else NEGATIVE_DEV) if dev else [])
            templates = TRAIN_TEMPLATES + DEV_TEMPLATES if dev else TRAIN_TEMPLATES
            make = lambda: _sst_sentence(rng, bool(label), templates, words)  # noqa: E731
            out += [(s, label) for s in _unique(rng, make, n // 2, taken)]
        rng.shuffle(out)
        return out

    train, dev, test = rows(200, False), rows(60, True), rows(20, True)
    return {
        "train.tsv": "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in train),
        "dev.tsv": "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in dev),
        "test.tsv": "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(test)),
    }


# ---- CoLA ----------------------------------------------------------------------------------------
NAMES = ["Mira", "Tobias", "Anneke", "Rafael", "Ines", "Colm", "Yusuf", "Petra", "Leon", "Saskia"]
OBJECTS = ["the letter", "a sandwich", "the old map", "three apples", "the red bicycle", "her notes", "a song"]


def cola(rng: random.Random) -> dict[str, str]:
    good = ["{a} wrote {o} yesterday.", "{a} thinks that {b} found {o}.", "Which book did {a} give to {b}?",
            "{a} and {b} have already eaten {o}.", "It seems that {a} is tired.", "{a} asked {b} to bring {o}."]
    bad = ["{a} wrote yesterday {o} the.", "{a} thinks that found {b} {o}.", "Which book did {a} gave to {b}?",
           "{a} and {b} has already ate {o}.", "It seems {a} that is tired.", "{a} asked {b} bring to {o}."]
    taken: set = set()

    def make(label: int) -> str:
        a, b = rng.sample(NAMES, 2)
        return rng.choice(good if label else bad).format(a=a, b=b, o=rng.choice(OBJECTS))

    def rows(n: int) -> list[tuple[str, int]]:
        out = [(s, y) for y in (0, 1) for s in _unique(rng, lambda: make(y), n // 2, taken)]  # noqa: B023
        rng.shuffle(out)
        return out

    def labelled(rs, prefix):
        return "".join(f"{prefix}{i % 7 + 1:02d}\t{y}\t{'' if y else '*'}\t{s}\n" for i, (s, y) in enumerate(rs))

    train, dev, test = rows(40), rows(20), rows(10)
    return {"train.tsv": labelled(train, "nm"), "dev.tsv": labelled(dev, "nd"),
            "test.tsv": "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(test))}


# ---- MRPC ----------------------------------------------------------------------------------------
COMPANIES = ["Halvorsen Tools", "Brightwater Foods", "Korrin Systems", "Delmar Shipping", "Oakfield Energy",
             "Pellucid Labs", "Sandor Mining", "Vireo Airlines"]


def _news_pair(rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    c = rng.choice(COMPANIES)
    amount = f"{rng.randint(2, 90)}.{rng.randint(1, 9)}"
    quarter = rng.choice(["first", "second", "third", "fourth"])
    kind = rng.randrange(3)
    if kind == 0:
        a = f"{c} said on Tuesday its {quarter}-quarter profit rose to ${amount} million."
        b2 = amount if paraphrase else f"{float(amount) + rng.randint(3, 20):.1f}"
        b = (f"{c}'s profit for the {quarter} quarter climbed to ${b2} million, the company said Tuesday."
             if paraphrase or rng.random() < 0.5 else
             f"{c} said on Tuesday it would cut {rng.randint(100, 900)} jobs by the end of the year.")
    elif kind == 1:
        n = rng.randint(120, 980)
        a = f"Shares of {c} fell {rng.randint(2, 9)} percent after the firm announced {n} layoffs."
        b = (f"{c} stock dropped after the company said it would lay off {n} workers." if paraphrase else
             f"{c} stock rose after the company said it would hire {n} workers.")
    else:
        city = rng.choice(["Lisbon", "Denver", "Osaka", "Tallinn", "Perth", "Quebec"])
        a = f"{c} will open a new plant in {city} next spring, a spokeswoman said."
        b = (f"A spokeswoman said {c} plans to open a plant in {city} next spring." if paraphrase else
             f"A spokeswoman said {c} has closed its plant in {city} after a fire.")
    return a, b


def mrpc(rng: random.Random) -> dict[str, str]:
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"

    def rows(n: int) -> list[tuple[int, str, str]]:
        out = [(y, *_news_pair(rng, bool(y))) for y in [1] * (n * 2 // 3) + [0] * (n - n * 2 // 3)]
        rng.shuffle(out)
        return out

    def ids():
        return rng.randint(100000, 3999999), rng.randint(100000, 3999999)

    train, dev, test = rows(40), rows(20), rows(10)
    labelled = lambda rs: "".join(f"{y}\t{i1}\t{i2}\t{a}\t{b}\n" for (y, a, b), (i1, i2)  # noqa: E731
                                  in zip(rs, [ids() for _ in rs]))
    return {
        # The download script copies MRPC's BOM into train.tsv and dev.tsv.
        "train.tsv": "\ufeff" + header + labelled(train),
        "dev.tsv": "\ufeff" + header + labelled(dev),
        "test.tsv": "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + "".join(
            f"{n}\t{i1}\t{i2}\t{a}\t{b}\n" for n, ((_, a, b), (i1, i2)) in enumerate(zip(test, [ids() for _ in test]))),
    }


# ---- STS-B ---------------------------------------------------------------------------------------
PEOPLE = ["A man", "A woman", "A boy", "A girl", "An old man", "A young woman"]
ACTIONS = [("is playing a guitar", "is strumming a guitar", "is playing a piano"),
           ("is slicing an onion", "is cutting an onion", "is peeling a potato"),
           ("is riding a horse", "is on horseback", "is feeding a horse"),
           ("is swimming in a pool", "swims in a pool", "is cleaning a pool"),
           ("is reading a newspaper", "reads the paper", "is folding a newspaper"),
           ("is dancing on a stage", "dances on stage", "is singing on a stage")]


def _sts_pair(rng: random.Random) -> tuple[str, str, float]:
    who, (act, same, close) = rng.choice(PEOPLE), rng.choice(ACTIONS)
    kind = rng.randrange(4)
    if kind == 0:
        return f"{who} {act}.", f"{who} {same}.", rng.choice([4.6, 4.8, 5.0])
    if kind == 1:
        other = rng.choice([p for p in PEOPLE if p != who])
        return f"{who} {act}.", f"{other} {same}.", rng.choice([3.2, 3.6, 3.8])
    if kind == 2:
        return f"{who} {act}.", f"{who} {close}.", rng.choice([1.6, 2.0, 2.4])
    far = rng.choice([a for a in ACTIONS if a[0] != act])[0]
    return f"{who} {act}.", f"{rng.choice(PEOPLE)} {far}.", rng.choice([0.0, 0.2, 0.4])


def stsb(rng: random.Random) -> dict[str, str]:
    cols = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"

    def rows(n: int, labelled: bool) -> str:
        out = []
        for i in range(n):
            a, b, score = _sts_pair(rng)
            row = f"{i}\tmain-captions\tMSRvid\t2012test\t{i + 1:04d}\tnone\tnone\t{a}\t{b}"
            out.append(row + (f"\t{score:.3f}" if labelled else "") + "\n")
        return "".join(out)

    return {"train.tsv": cols + "\tscore\n" + rows(40, True), "dev.tsv": cols + "\tscore\n" + rows(20, True),
            "test.tsv": cols + "\n" + rows(10, False)}


# ---- MNLI ----------------------------------------------------------------------------------------
MNLI_LABELS = ["entailment", "neutral", "contradiction"]


def _nli_triple(rng: random.Random, label: str) -> tuple[str, str]:
    who = rng.choice(NAMES)
    place = rng.choice(["the market", "the library", "the harbour", "the station", "the museum"])
    premise = f"{who} walked to {place} early on Sunday morning."
    hypothesis = {"entailment": f"{who} went to {place}.",
                  "neutral": f"{who} met a friend at {place}.",
                  "contradiction": f"{who} stayed at home all Sunday."}[label]
    return premise, hypothesis


def _parses(s: str) -> tuple[str, str]:
    words = s.replace(".", " .").split()
    return "( " + " ".join(words) + " )", "(ROOT (S " + " ".join(f"(X {w})" for w in words) + "))"


def mnli(rng: random.Random) -> dict[str, str]:
    base = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
            "sentence2_parse\tsentence1\tsentence2")

    def rows(n: int, genre: str, n_labels: int) -> str:
        out = []
        for i in range(n):
            label = MNLI_LABELS[i % 3]
            p, h = _nli_triple(rng, label)
            (pb, pp), (hb, hp) = _parses(p), _parses(h)
            row = f"{i}\t{1000 + i}\t{1000 + i}{'enc'[i % 3]}\t{genre}\t{pb}\t{hb}\t{pp}\t{hp}\t{p}\t{h}"
            if n_labels:
                row += "".join(f"\t{label}" for _ in range(n_labels)) + f"\t{label}"
            out.append(row + "\n")
        return "".join(out)

    labels5 = "\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n"
    return {
        "train.tsv": base + "\tlabel1\tgold_label\n" + rows(30, "fiction", 1),
        "dev_matched.tsv": base + labels5 + rows(12, "fiction", 5),
        "dev_mismatched.tsv": base + labels5 + rows(12, "letters", 5),
        "test_matched.tsv": base + "\n" + rows(6, "fiction", 0),
        "test_mismatched.tsv": base + "\n" + rows(6, "letters", 0),
    }


TASKS = {"SST-2": sst2, "CoLA": cola, "MRPC": mrpc, "STS-B": stsb, "MNLI": mnli}


def main() -> None:
    write_samples_main(__doc__, Path(__file__).parent, lambda: {
        f"{folder}/{name}": text for folder, make in TASKS.items()
        for name, text in make(random.Random(f"{SEED}-{folder}")).items()})


if __name__ == "__main__":
    main()
