"""Write the small SQuAD-format data sets that nmod ships for its demo and tests.

    python collections/nmod_nlp/data/squad/samples/make_samples.py [--out DIR]

Biographies of made-up people in made-up places, written from templates with a fixed seed, so the
files are reproducible and the task is learnable by a small pretrained BERT in minutes on a CPU:
every question asks for a fact stated in its paragraph, and the answer is a span of that paragraph.
The data exercises what real SQuAD does: accented names (stripped by an uncased tokenizer, restored
through offsets), curly quotes and dashes, numbers with separators, dev questions with several gold
answers (some with an article, which the official normalisation removes), and paragraphs about
several people that are longer than one 384-token window. The v2.0 files add unanswerable questions
(facts the paragraph does not state) with `plausible_answers`, as SQuAD 2.0 does.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

FEMALE = ["Beatrix", "Dagny", "Freya", "Hester", "Jolene", "Liesel", "Nerys", "Perpetua", "Rosalind", "Thea",
          "Verity", "Ximena", "Zora", "Zoë", "Renée", "Anaïs", "Maëlle", "Agnès", "Łucja", "Ingrid", "Clémence"]
MALE = ["Aldric", "Cosimo", "Elias", "Gideon", "Ivo", "Kasimir", "Matthias", "Osric", "Quentin", "Silas", "Ulrich",
        "Wendel", "Yannick", "Søren", "José", "Björn", "Nuño", "Émile", "Tomás", "Oskar", "Halvard"]
SUR_A = ["Al", "Bren", "Cor", "Dal", "Ever", "Fen", "Gar", "Hol", "Ith", "Jor", "Kel", "Lor", "Mor", "Nor", "Osk",
         "Pel", "Quin", "Ros", "Sel", "Tam", "Ulv", "Var", "Wes", "Yor", "Zan"]
SUR_B = ["dric", "wick", "mont", "ford", "ley", "ton", "by", "stad", "holm", "gaard", "ault", "ière", "ez", "ski",
         "ova", "ström", "ardt", "ney"]
PLACE_A = ["Ash", "Bel", "Crane", "Dun", "Elm", "Fair", "Glen", "Hart", "Iron", "Kings", "Lang", "Mill", "North",
           "Oak", "Pine", "Red", "Stone", "Thorn", "West", "Wyn"]
PLACE_B = ["mouth", "bridge", "haven", "field", "ford", "wick", "dale", "more", "port", "stead"]
PLACE_FIXED = ["Åsvik", "Brückenau", "Saint-Léonce", "São Teodoro", "Castellón del Mar", "Újvár", "Port Halloway",
               "Lake Morvane", "Île-de-Sable", "Nørrebyen"]
PROFESSIONS = ["cartographer", "botanist", "architect", "violinist", "engineer", "astronomer", "novelist", "painter",
               "chemist", "sculptor", "linguist", "surgeon", "geologist", "composer", "photographer", "historian"]
SUBJECTS = ["mathematics", "natural philosophy", "medicine", "law", "music", "chemistry", "architecture",
            "classical languages", "geology", "painting"]
INSTITUTIONS = ["Royal Academy of {p}", "University of {p}", "{s} Institute", "Conservatory of {p}",
                "{p} Polytechnic School"]
ORGS = ["{p} Geographical Society", "{s} Foundation", "{p} Botanical Garden", "{s} & Partners",
        "Society for the Study of {p}", "{p} Observatory", "{s} Press"]
PRIZES = ["Lindqvist Medal", "Order of the Silver Heron", "Marchetti Prize", "Golden Compass Award", "Halden Medal",
          "Prix Delacroix-Vautrin", "Everton Fellowship"]
TITLE_A = ["The", "A", "Notes on", "Letters from", "Songs of", "On the Nature of", "Maps of", "Winter in"]
TITLE_B = ["Northern Tides", "the Quiet Valley", "Glass and Iron", "Lost Harbours", "the Salt Road",
           "Distant Bells", "the Amber Coast", "Forgotten Stars", "Stone Gardens"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
NUMBERS = ["two", "three", "four", "five", "six", "seven"]
FILLER = [
    "Contemporary accounts describe {o} as patient, exacting and generous with younger colleagues.",
    "Little is known about {pos} early years beyond a handful of letters kept by the family.",
    "Critics at the time were divided — some praised {pos} ambition, others found it reckless.",
    "The period that followed was marked by long journeys, unpaid debts and a stream of new projects.",
    "Several of {pos} notebooks survive, filled with sketches, measurements and half-finished lists.",
]


class Builder:
    """Accumulates a paragraph and the character offsets of the answers written into it."""

    def __init__(self):
        self.text = ""
        self.spans: dict[str, tuple[str, int]] = {}

    def add(self, *parts) -> None:
        for part in parts:
            if isinstance(part, tuple):  # (key, answer text)
                key, value = part
                self.spans[key] = (value, len(self.text))
                self.text += value
            else:
                self.text += part

    def sentence_break(self) -> None:
        if self.text and not self.text.endswith(" "):
            self.text += " "


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.used_names: set = set()
        self.used_places: set = set()

    def name(self, female: bool) -> str:
        while True:
            n = f"{self.rng.choice(FEMALE if female else MALE)} {self.rng.choice(SUR_A)}{self.rng.choice(SUR_B)}"
            if n not in self.used_names:
                self.used_names.add(n)
                return n

    def place(self) -> str:
        while True:
            if self.rng.random() < 0.25:
                p = self.rng.choice(PLACE_FIXED)
            else:
                p = f"{self.rng.choice(PLACE_A)}{self.rng.choice(PLACE_B)}"
            if p not in self.used_places or len(self.used_places) > 150:
                self.used_places.add(p)
                return p

    def date(self, lo: int, hi: int) -> tuple[str, int]:
        year = self.rng.randint(lo, hi)
        return f"{self.rng.randint(1, 28)} {self.rng.choice(MONTHS)} {year}", year

    def person(self) -> dict:
        r = self.rng
        she = r.random() < 0.5
        name = self.name(she)
        surname = name.split(" ", 1)[1]
        birth, by = self.date(1780, 1930)
        death, dy = self.date(by + 35, by + 90)
        org_year = r.randint(by + 22, dy - 3)
        return {
            "name": name, "surname": surname, "she": she,
            "birth_date": birth, "birth_year": by, "birth_place": self.place(),
            "profession": r.choice(PROFESSIONS), "subject": r.choice(SUBJECTS),
            "institution": r.choice(INSTITUTIONS).format(p=self.place(), s=surname.split()[0]),
            "grad_year": str(r.randint(by + 19, by + 26)),
            "org": r.choice(ORGS).format(p=self.place(), s=surname), "org_year": str(org_year),
            "budget": f"£{r.randint(2, 95)},{r.randint(0, 999):03d}",
            "spouse": self.name(not she), "marry_year": str(r.randint(by + 20, by + 40)), "children": r.choice(NUMBERS),
            "death_date": death, "death_place": self.place(), "age": str(dy - by),
            "work": f"{r.choice(TITLE_A)} {r.choice(TITLE_B)}", "pub_year": str(r.randint(by + 25, dy)),
            "prize": r.choice(PRIZES), "prize_year": str(r.randint(by + 30, dy)),
        }


# Each fact: the sentence that states it (parts; a tuple marks an answer span) and its questions.
def sentences(p: dict) -> dict:
    he, his, him = ("She", "her", "her") if p["she"] else ("He", "his", "him")
    n, s = p["name"], p["surname"]
    return {
        "birth": [n, " (born ", ("birth_date", p["birth_date"]), " in ", ("birth_place", p["birth_place"]),
                  ") was a ", ("profession", p["profession"]), " whose career spanned more than four decades."],
        "study": [he, " studied ", ("subject", p["subject"]), " at the ", ("institution", p["institution"]),
                  ", graduating in ", ("grad_year", p["grad_year"]), "."],
        "org": ["In ", ("org_year", p["org_year"]), ", ", his, " savings paid for the founding of the ",
                ("org", p["org"]), ", whose annual budget soon reached ", ("budget", p["budget"]), "."],
        "family": [s, " married ", ("spouse", p["spouse"]), " in ", ("marry_year", p["marry_year"]),
                   "; the couple had ", ("children", p["children"]), " children."],
        "work": [s, "’s best-known book, “", ("work", p["work"]), "”, appeared in ", ("pub_year", p["pub_year"]),
                 " and was reprinted many times."],
        "prize": [he, " received the ", ("prize", p["prize"]), " in ", ("prize_year", p["prize_year"]),
                  " for services to ", p["profession"] == "novelist" and "literature" or "science", "."],
        "death": [s, " died on ", ("death_date", p["death_date"]), " in ", ("death_place", p["death_place"]),
                  " at the age of ", ("age", p["age"]), "."],
    }


def questions(p: dict) -> dict:
    n = p["name"]
    return {
        "birth_date": [f"When was {n} born?", f"On what date was {n} born?"],
        "birth_place": [f"Where was {n} born?", f"In which town was {n} born?"],
        "profession": [f"What was {n}'s profession?", f"What did {n} work as?"],
        "subject": [f"What did {n} study?", f"Which subject did {n} study?"],
        "institution": [f"Where did {n} study?", f"At which institution did {n} study?"],
        "grad_year": [f"In what year did {n} graduate?", f"When did {n} graduate?"],
        "org": [f"What did {n}'s savings pay to found?", f"Which organisation did {n} fund?"],
        "org_year": [f"In what year was the {p['org']} founded?", f"When was the {p['org']} founded?"],
        "budget": [f"What annual budget did the {p['org']} reach?", f"How large was the budget of the {p['org']}?"],
        "spouse": [f"Whom did {n} marry?", f"Who was {n}'s spouse?"],
        "marry_year": [f"In what year did {n} marry?", f"When did {n} marry {p['spouse']}?"],
        "children": [f"How many children did {n} have?"],
        "work": [f"What is {n}'s best-known book?", f"Which book by {n} is best known?"],
        "pub_year": [f"When did {p['work']} appear?", f"In what year was {n}'s best-known book published?"],
        "prize": [f"Which award did {n} receive?", f"What prize was {n} given?"],
        "prize_year": [f"In what year did {n} receive the {p['prize']}?"],
        "death_date": [f"When did {n} die?", f"On what date did {n} die?"],
        "death_place": [f"Where did {n} die?", f"In which place did {n} die?"],
        "age": [f"How old was {n} when {'she' if p['she'] else 'he'} died?", f"At what age did {n} die?"],
    }


# Which answer keys each sentence provides, and a stated fact to offer as a plausible (wrong) answer
# when a v2.0 question asks for a fact the paragraph leaves out.
PROVIDES = {"birth": ["birth_date", "birth_place", "profession"], "study": ["subject", "institution", "grad_year"],
            "org": ["org_year", "org", "budget"], "family": ["spouse", "marry_year", "children"],
            "work": ["work", "pub_year"], "prize": ["prize", "prize_year"],
            "death": ["death_date", "death_place", "age"]}
PLAUSIBLE = {"death_date": "birth_date", "death_place": "birth_place", "birth_date": "death_date",
             "birth_place": "death_place", "prize_year": "pub_year", "pub_year": "prize_year",
             "marry_year": "grad_year", "grad_year": "marry_year", "prize": "work", "work": "prize",
             "spouse": None, "children": "age", "age": None, "org": "institution", "institution": "org"}


def variants(key: str, text: str, start: int, context: str) -> list[dict]:
    """Three gold answers, as in SQuAD dev: two annotators agree, a third words it differently."""
    answers = [{"text": text, "answer_start": start}] * 2
    third = {"text": text, "answer_start": start}
    before = context[max(0, start - 4):start]
    if before == "the ":  # a third annotator includes the article
        third = {"text": "the " + text, "answer_start": start - 4}
    elif key in ("birth_date", "death_date"):  # ... or drops the day
        day = text.split(" ", 1)[0]
        third = {"text": text[len(day) + 1:], "answer_start": start + len(day) + 1}
    return answers + [third]


def make_paragraph(gen: Generator, n_people: int, n_questions: int, dev: bool, v2: bool, qid: list) -> dict:
    r = gen.rng
    b = Builder()
    qas = []
    for k in range(n_people):
        p = gen.person()
        sent = sentences(p)
        kept = ["birth"] + r.sample([x for x in sent if x != "birth"], r.randint(3, 6))
        if n_people > 1 and k == 0:
            kept = list(sent)  # long, many-person paragraphs: the first person in full
        order = ["birth"] + [x for x in sent if x in kept and x != "birth"]
        spans_before = set(b.spans)
        for j, key in enumerate(order):
            b.sentence_break()
            b.add(*[(f"{k}:{part[0]}", part[1]) if isinstance(part, tuple) else part for part in sent[key]])
            if j == 1 and r.random() < 0.5:
                b.sentence_break()
                b.add(r.choice(FILLER).format(o=p["name"].split()[0], pos="her" if p["she"] else "his"))
        stated = [key[len(f"{k}:"):] for key in b.spans if key not in spans_before]
        qs = questions(p)
        ask = r.sample(stated, min(len(stated), n_questions if n_people == 1 else max(2, n_questions // n_people)))
        if n_people > 1 and k == n_people - 1:
            ask = r.sample(stated, min(len(stated), 3))  # questions on the far window of a long context
        for fact in ask:
            text, start = b.spans[f"{k}:{fact}"]
            qid[0] += 1
            qa = {"id": f"{'d' if dev else 't'}{'2' if v2 else '1'}-{qid[0]:05d}", "question": r.choice(qs[fact])}
            qa["answers"] = variants(fact, text, start, b.text) if dev else [{"text": text, "answer_start": start}]
            if v2:
                qa["is_impossible"] = False
            qas.append(qa)
        if v2:
            missing = [f for f in qs if f not in stated and f in PLAUSIBLE]
            for fact in r.sample(missing, min(len(missing), r.randint(1, 2))):
                qid[0] += 1
                qa = {"id": f"{'d' if dev else 't'}2-{qid[0]:05d}", "question": r.choice(qs[fact]), "answers": [],
                      "is_impossible": True}
                alt = PLAUSIBLE[fact]
                if alt and f"{k}:{alt}" in b.spans:
                    text, start = b.spans[f"{k}:{alt}"]
                    qa["plausible_answers"] = [{"text": text, "answer_start": start}]
                qas.append(qa)
    r.shuffle(qas)
    return {"context": b.text, "qas": qas}


def make_dataset(seed: int, n_questions: int, dev: bool, v2: bool, version: str) -> dict:
    gen = Generator(seed)
    qid = [0]
    articles, total = [], 0
    while total < n_questions:
        paragraphs = []
        for _ in range(gen.rng.randint(2, 4)):
            long = gen.rng.random() < 0.12
            para = make_paragraph(gen, gen.rng.randint(4, 5) if long else 1, gen.rng.randint(3, 6), dev, v2, qid)
            paragraphs.append(para)
            total += len(para["qas"])
        articles.append({"title": f"Biographies_{len(articles) + 1}", "paragraphs": paragraphs})
    return {"version": version, "data": articles}


def check(dataset: dict) -> None:
    """Every answer is its text at its answer_start, and every id is unique."""
    ids = set()
    for article in dataset["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                assert qa["id"] not in ids, qa["id"]
                ids.add(qa["id"])
                for a in qa["answers"] + qa.get("plausible_answers", []):
                    assert para["context"][a["answer_start"]:a["answer_start"] + len(a["text"])] == a["text"], qa


SETS = {  # file: (seed, questions, dev, v2, version)
    "train-v1.1.json": (11, 300, False, False, "1.1"),
    "dev-v1.1.json": (12, 100, True, False, "1.1"),
    "train-v2.0.json": (21, 200, False, True, "v2.0"),
    "dev-v2.0.json": (22, 90, True, True, "v2.0"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent), help="folder to write the JSON files to")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (seed, n, dev, v2, version) in SETS.items():
        data = make_dataset(seed, n, dev, v2, version)
        check(data)
        (out / name).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        qas = [qa for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
        impossible = sum(bool(qa.get("is_impossible")) for qa in qas)
        print(f"{out / name}: {len(qas)} questions ({impossible} unanswerable), "
              f"{(out / name).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
