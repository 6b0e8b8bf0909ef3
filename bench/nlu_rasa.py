"""Issue 18: a Rasa project through the database path, and entities learned from annotations.

    .venv/bin/python bench/nlu_rasa.py import                       # SQLite (a temporary file)
    .venv/bin/python bench/nlu_rasa.py import --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/nlu_rasa.py entities PATH                # a Rasa data file or directory

`import`: a generated Rasa project of --examples examples (YAML split over files in subfolders, entity annotations
with roles and groups, list-form examples with metadata, retrieval intents with responses, synonyms, regexes and
lookups) is read (`load_training_data`), imported into a fresh database as `switchboard nlu import-rasa` does
(replace), imported again (merge: every example a duplicate), and exported (`training_data` + Rasa YAML). Prints
each step's time and the load of the machine.

`entities`: k-fold entity precision/recall/F1 on an annotated Rasa data set (e.g. RasaHQ/financial-demo's
data/nlu) of the CRF the embedded engine trains, against a reference measured in the same run on the same folds:
a dictionary tagger that marks every span text annotated in the training folds (longest first, the entity it was
annotated with most often), what a lookup table of the annotated values gives.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pg import migrated_database  # noqa: E402 - after the path is set
from core.db.session import create_engine, create_sessionmaker  # noqa: E402
from core.nlu_admin import service  # noqa: E402
from nlu import crf  # noqa: E402
from nlu.data import dump_rasa_yaml, load_training_data  # noqa: E402
from nlu.protocol import TrainingExample  # noqa: E402

CITIES = ["Berlin", "Paris", "London", "Rome", "Madrid", "Vienna", "Prague", "Oslo", "Dublin", "Lisbon", "Moscow",
          "Kazan", "Warsaw", "Athens", "Zurich"]
PRODUCTS = ["fiber 100", "fiber 500", "mobile start", "mobile max", "tv basic", "tv premium"]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f} {five:.2f} (1/5 min), {os.cpu_count()} cores"


def make_project(root: Path, examples: int) -> None:
    """A Rasa project of about `examples` examples in data/nlu/*.yml, data/faq/*.yml and data/lookups/*.yml."""
    rnd = random.Random(18)
    intents = 100
    per_intent = examples // intents
    (root / "data" / "nlu").mkdir(parents=True)
    (root / "data" / "faq").mkdir()
    (root / "data" / "lookups").mkdir()
    words = ["please", "now", "today", "again", "quickly", "for me", "if you can", "thanks", "asap", "later"]
    for file_no in range(10):
        lines = ['version: "3.1"', "nlu:"]
        responses = ["responses:"]
        for k in range(10):
            i = file_no * 10 + k
            retrieval = i % 4 == 0
            name = f"faq/ask_topic_{i}" if retrieval else f"intent_{i}"
            lines.append(f"- intent: {name}")
            if i % 5 == 1:
                lines += ["  metadata:", "    source: bench", "  examples:"]
                for n in range(per_intent):
                    lines += [f"  - text: |\n      topic {i} question {n} {rnd.choice(words)}",
                              f"    metadata:\n      n: {n}"]
                continue
            lines.append("  examples: |")
            for n in range(per_intent):
                a, b = rnd.sample(CITIES, 2)
                if i % 3 == 0:
                    lines.append(f'    - topic {i} from [{a}]{{"entity": "city", "role": "departure"}} to '
                                 f'[{b}]{{"entity": "city", "role": "destination"}} {n} {rnd.choice(words)}')
                elif i % 3 == 1:
                    lines.append(f"    - topic {i} about [{rnd.choice(PRODUCTS)}](product) number {n} "
                                 f"{rnd.choice(words)}")
                else:
                    lines.append(f"    - topic {i} plain example {n} {rnd.choice(words)}")
            if retrieval:
                responses += [f"  utter_{name}:", f"  - text: Answer to topic {i}."]
        (root / "data" / ("faq" if file_no % 2 else "nlu") / f"part{file_no}.yml").write_text(
            "\n".join(lines + (["", *responses] if len(responses) > 1 else [])) + "\n", encoding="utf-8")
    extras = ['version: "3.1"', "nlu:", "- lookup: product", "  examples: |",
              *[f"    - {p}" for p in PRODUCTS], "- synonym: fiber 100", "  examples: |", "    - fibre 100",
              "- regex: account", "  examples: |", r"    - \b\d{10}\b"]
    (root / "data" / "lookups" / "extras.yml").write_text("\n".join(extras) + "\n", encoding="utf-8")


async def run_import(url: str, examples: int) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    with tempfile.TemporaryDirectory() as tmp:
        make_project(Path(tmp), examples)
        started = time.perf_counter()
        data = load_training_data(Path(tmp) / "data")
        read = time.perf_counter() - started
        files = sum(1 for _ in (Path(tmp) / "data").rglob("*.yml"))
    annotations = sum(len(e.entities) for e in data.examples)
    print(f"database: {make_url(url).get_backend_name()}; {len(data.examples)} examples, {len(data.intents)} "
          f"intents, {annotations} entity annotations; {load()}")
    print(f"{'step':<38}{'seconds':>9}{'examples added':>16}")
    print(f"{f'read the project ({files} files)':<38}{read:>9.2f}{'':>16}")
    for label, mode in (("import (replace)", "replace"), ("import again (merge, all duplicates)", "merge")):
        started = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            report = await service.import_data(session, data, source="import", mode=mode, actor=None)
        print(f"{label:<38}{time.perf_counter() - started:>9.2f}{report['examples']:>16}")
    started = time.perf_counter()
    async with sessionmaker() as session:
        text = dump_rasa_yaml(await service.export_data(session))
    print(f"{'export (Rasa YAML, ' + str(len(text) // 1000) + ' kB)':<38}{time.perf_counter() - started:>9.2f}")
    await engine.dispose()


def import_bench(args: argparse.Namespace) -> None:
    with migrated_database(args.postgres, "sb_bench_nlu") as url:
        asyncio.run(run_import(url, args.examples))


class DictionaryTagger:
    """The reference: every annotated span text of the training examples, matched longest first."""

    def __init__(self, examples: list[TrainingExample]) -> None:
        seen: dict[str, Counter[tuple[str, str | None, str | None]]] = {}
        for e in examples:
            for a in e.entities:
                seen.setdefault(e.text[a.start:a.end].casefold(), Counter())[(a.entity, a.role, a.group)] += 1
        self.labels = {text: counts.most_common(1)[0][0] for text, counts in seen.items()}
        keys = sorted(self.labels, key=len, reverse=True)
        self.pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, keys)) + r")(?!\w)", re.IGNORECASE) \
            if keys else None

    def spans(self, text: str) -> list[crf.Span]:
        if self.pattern is None:
            return []
        return [crf.Span(m.start(), m.end(), *self.labels[m.group(0).casefold()]) for m in self.pattern.finditer(text)]


def entities_bench(args: argparse.Namespace) -> None:
    data = load_training_data(args.path)
    examples = data.examples
    folds = args.folds
    truth: list[TrainingExample] = []
    ours: list[list[crf.Span]] = []
    reference: list[list[crf.Span]] = []
    seconds = 0.0
    for k in range(folds):
        train = [e for i, e in enumerate(examples) if i % folds != k]
        test = [e for i, e in enumerate(examples) if i % folds == k]
        started = time.perf_counter()
        tagger = crf.EntityTagger.fit(train, data.synonyms)
        seconds += time.perf_counter() - started
        dictionary = DictionaryTagger(train)
        truth += test
        ours += [tagger.spans(e.text) if tagger else [] for e in test]
        reference += [dictionary.spans(e.text) for e in test]
    crf_scores, ref_scores = crf.score(truth, ours), crf.score(truth, reference)
    annotated = sum(len(e.entities) for e in examples)
    print(f"{args.path}: {len(examples)} examples, {annotated} annotations, {folds}-fold; CRF training "
          f"{seconds / folds:.2f} s per fold; {load()}")
    print(f"{'entity':<22}{'n':>6}{'ref P':>8}{'ref R':>8}{'ref F1':>8}{'CRF P':>8}{'CRF R':>8}{'CRF F1':>8}")
    for name in [*sorted(n for n in crf_scores if n != "micro"), "micro"]:
        c, r = crf_scores[name], ref_scores.get(name, {"precision": 0.0, "recall": 0.0, "f1": 0.0})
        print(f"{name:<22}{int(c['support']):>6}{r['precision']:>8.3f}{r['recall']:>8.3f}{r['f1']:>8.3f}"
              f"{c['precision']:>8.3f}{c['recall']:>8.3f}{c['f1']:>8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="import timing of a generated Rasa project")
    imp.add_argument("--postgres", help="a PostgreSQL server URL (a private database is made on it)")
    imp.add_argument("--examples", type=int, default=5000)
    ent = commands.add_parser("entities", help="entity F1 of the CRF against a dictionary reference")
    ent.add_argument("path", type=Path)
    ent.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    import_bench(args) if args.command == "import" else entities_bench(args)


if __name__ == "__main__":
    main()
