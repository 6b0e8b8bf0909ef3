"""NLU benchmark: accuracy, macro-F1, out-of-scope handling, training time, latency, size and memory.

Usage:
    .venv/bin/python bench/nlu.py                       # banking77, hwu64, shipped data; Rasa too if built
    .venv/bin/python bench/nlu.py --skip-rasa
    .venv/bin/python bench/nlu.py --train my.csv --test my_test.yml --name mine

Train/test files may be CSV (`text,intent` or `text,category`), Rasa YAML or Rasa JSON. Without a test
file the train file is 5-fold cross-validated (as the shipped data is).

Protocols, per data set:
- closed: train on all intents, score the test set -> accuracy, macro-F1, training seconds, parse latency
  (one text at a time, as in production), model size, peak memory (max RSS of a worker process).
- oos: train with 10 % of the intents held out, score the whole test set. `acc90` is accuracy on the
  in-scope examples; `oos_rec` the share of held-out-intent examples that fall back (confident=False) at
  the engine's own threshold; `ans_prec` the precision of what was answered automatically (an answered
  out-of-scope example counts as wrong); `oos@95` the out-of-scope recall at the threshold that gives
  exactly 95 % answered precision on the test set (an oracle threshold, the fair comparison for Rasa,
  which has no calibrated threshold of its own); `cover` the share of in-scope examples answered
  automatically at the engine's own threshold (the rest go to humans).
Rasa runs the `oos` protocol only by default (a DIET training of 10,000 examples takes minutes);
`--rasa-closed` adds its closed-set run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.load import memory_mb  # noqa: E402
from nlu.data import load_training_data  # noqa: E402
from nlu.embedded import (  # noqa: E402
    OUT_OF_SCOPE,
    EmbeddedEngine,
    choose_threshold,
)
from nlu.protocol import TrainingData, TrainingExample  # noqa: E402
from nlu.rasa import DEFAULT_RASA_CONFIG, RasaEngine  # noqa: E402
from nlu.text import detect_language  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
DEFAULT_SETS = {
    "banking77": (DATASETS / "banking77" / "train.csv", DATASETS / "banking77" / "test.csv"),
    "hwu64": (DATASETS / "hwu64" / "train.json", DATASETS / "hwu64" / "test.json"),
    "shipped": (REPO / "nlu" / "data" / "default", None),
}
BENCH_DATA = REPO / "bench" / "data"
OUT_OF_SCOPE_ROW = ""
"""The intent of a test row that is out of scope (an empty intent in a CSV test file, "### " in bench/data)."""
RASA_VENV = Path(os.environ.get("SWITCHBOARD_RASA_VENV", "/opt/switchboard/rasa-venv"))


# --- test files with out-of-scope rows, and the hand-written long / near-domain / multi-intent sets ---------

def load_test(path: Path) -> TrainingData:
    """A test file; CSV rows with an empty intent are kept as out-of-scope rows (the loader refuses them)."""
    if path.suffix.lower() != ".csv":
        return load_training_data(path)
    import csv

    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    label = next(c for c in ("intent", "category", "label") if rows and c in rows[0])
    return TrainingData(examples=[TrainingExample(r["text"], (r[label] or "").strip()) for r in rows
                                  if (r["text"] or "").strip()])


def load_blocks(path: Path) -> list[tuple[str, str]]:
    """(intent, text) pairs of a bench/data file: "### intent" headers, the text below each, # comments atop."""
    pairs: list[tuple[str, str]] = []
    intent: str | None = None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            if intent is not None:
                pairs.append((intent, "\n".join(lines).strip()))
            intent, lines = line[4:].strip(), []
        elif intent is not None:
            lines.append(line)
    if intent is not None:
        pairs.append((intent, "\n".join(lines).strip()))
    return pairs


def special_evaluations(engine: EmbeddedEngine) -> dict[str, Any]:
    """Long letters, near-domain out-of-scope and two-request messages, parsed one by one like production."""
    out: dict[str, Any] = {}
    long_rows = load_blocks(BENCH_DATA / "long_texts.txt")
    parses = [engine.parse_sync(text) for _, text in long_rows]
    truth = [intent for intent, _ in long_rows]
    # Answered by the bot alone: confident, and read as one request (two would hand the letter over).
    answered = [p.confident and len(p.requests) <= 1 for p in parses]
    right = [a and p.intent == t for a, p, t in zip(answered, parses, truth, strict=True)]
    out["long"] = {
        "n": len(long_rows),
        "accuracy": float(np.mean([p.intent == t for p, t in zip(parses, truth, strict=True)])),
        "coverage": float(np.mean(answered)),
        "answered_precision": float(sum(right) / max(1, sum(answered))),
        "misses": [(t, [r.name for r in p.requests] or p.intent, round(p.confidence, 3))
                   for a, p, t in zip(answered, parses, truth, strict=True) if not (a and p.intent == t)],
    }
    oos_rows = load_blocks(BENCH_DATA / "near_domain_oos.txt")
    oos_parses = [engine.parse_sync(text) for _, text in oos_rows]
    out["near_domain_oos"] = {
        "n": len(oos_rows),
        "not_answered": float(np.mean([not p.confident for p in oos_parses])),
        "answered": [(text[:60], p.intent, round(p.confidence, 3))
                     for (_, text), p in zip(oos_rows, oos_parses, strict=True) if p.confident],
    }
    # The held-out set is reported as a share only: its texts are not to be looked at one by one while tuning.
    holdout = [engine.parse_sync(text) for _, text in load_blocks(BENCH_DATA / "near_domain_oos_holdout.txt")]
    out["near_domain_oos_holdout"] = {"n": len(holdout),
                                      "not_answered": float(np.mean([not p.confident for p in holdout]))}
    letters = [text for _, text in long_rows]
    out["letters_latency"] = parse_latency(engine, letters)
    multi_rows = load_blocks(BENCH_DATA / "multi_intent.txt")
    multi_parses = [engine.parse_sync(text) for _, text in multi_rows]
    both = dropped = 0
    for (intents, _), p in zip(multi_rows, multi_parses, strict=True):
        found = {r.name for r in p.requests}
        both += set(intents.split("+")) <= found
        # One request answered alone while the message has two: the other would be dropped silently.
        dropped += len(found) < 2 and p.confident
    out["multi"] = {"n": len(multi_rows), "both_found": both / len(multi_rows),
                    "one_answered_other_dropped": dropped / len(multi_rows),
                    "found": [(i, [r.name for r in p.requests]) for (i, _), p in zip(multi_rows, multi_parses,
                                                                                      strict=True)]}
    return out


def parse_latency(engine: EmbeddedEngine, texts: list[str], rounds: int = 5) -> dict[str, float]:
    """Wall and CPU milliseconds per parse over `rounds` passes. On a shared machine the wall p99 is mostly the
    time the process waited for a core; the thread's CPU time is what the parse itself costs."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(rounds):
        for text in texts:
            t0, c0 = time.perf_counter(), time.thread_time()
            engine.parse_sync(text)
            cpu.append((time.thread_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": float(np.percentile(wall, 50)), "p99_ms": float(np.percentile(wall, 99)),
            "cpu_p50_ms": float(np.percentile(cpu, 50)), "cpu_p99_ms": float(np.percentile(cpu, 99))}


# --- splits ------------------------------------------------------------------------------------------

def subset(data: TrainingData, keep: Any) -> TrainingData:
    return TrainingData(examples=[e for e in data.examples if keep(e)], synonyms=data.synonyms,
                        regexes=data.regexes, lookups=data.lookups, responses=data.responses)


def held_out_intents(data: TrainingData, fraction: float, seed: int) -> set[str]:
    intents = data.intents
    return set(random.Random(seed).sample(intents, max(1, round(len(intents) * fraction))))


def folds(data: TrainingData, k: int, seed: int) -> list[tuple[TrainingData, TrainingData]]:
    order = list(range(len(data.examples)))
    random.Random(seed).shuffle(order)
    out = []
    for i in range(k):
        test_idx = set(order[i::k])
        out.append((
            TrainingData(examples=[e for j, e in enumerate(data.examples) if j not in test_idx],
                         synonyms=data.synonyms, regexes=data.regexes, lookups=data.lookups),
            TrainingData(examples=[e for j, e in enumerate(data.examples) if j in test_idx]),
        ))
    return out


def score(truth: list[str], predicted: list[str | None], confidence: list[float], confident: list[bool],
          held: set[str]) -> dict[str, Any]:
    """Metrics of one test run; examples of held-out intents are out-of-scope."""
    from sklearn.metrics import f1_score

    t = np.array(truth, dtype=object)
    p = np.array([x or "" for x in predicted], dtype=object)
    c = np.array(confidence)
    a = np.array(confident)
    oos = np.isin(t, list(held)) if held else np.zeros(len(t), dtype=bool)
    ins = ~oos
    correct = (p == t) & ins
    out: dict[str, Any] = {
        "accuracy": float(correct[ins].mean()),
        "macro_f1": float(f1_score(t[ins].astype(str), p[ins].astype(str), average="macro",
                                   labels=sorted(set(t[ins])), zero_division=0)),
        "answered_precision": float(correct[a].mean()) if a.any() else None,
        "coverage": float(a[ins].mean()),
    }
    if oos.any():
        out["oos_recall"] = float((~a[oos]).mean())
        oracle = choose_threshold(c, correct, 0.95)
        out["oos_at_95"] = float((c[oos] < oracle).mean())
    return out


# --- the embedded engine, measured in a worker process (for its peak memory) --------------------------

def only_language(data: TrainingData, language: str | None) -> TrainingData:
    """The examples written in one language (shipped data mixes Russian and English)."""
    if not language:
        return data
    return subset(data, lambda e: detect_language(e.text) == language)


def embedded_worker(task: dict[str, Any]) -> dict[str, Any]:
    train = only_language(load_training_data(task["train"]), task.get("lang"))
    test = only_language(load_test(Path(task["test"])), task.get("lang")) if task.get("test") else None
    features = task.get("features")
    options: dict[str, Any] = {"features": features.split(",") if features else ()} if features is not None else {}
    runs = []
    if test is None:
        runs = folds(train, task["folds"], task["seed"])
    else:
        runs = [(train, test)]
    results: dict[str, Any] = {}
    closed: list[dict[str, Any]] = []
    oos: list[dict[str, Any]] = []
    latencies: list[float] = []
    cpu_latencies: list[float] = []
    train_seconds: list[float] = []
    train_cpu_seconds: list[float] = []
    size = 0
    for n, (tr, te) in enumerate(runs):
        # closed set
        with tempfile.TemporaryDirectory() as tmp:
            engine = EmbeddedEngine(Path(tmp), target_precision=task["target_precision"], **options)
            started, cpu_started = time.perf_counter(), time.process_time()
            engine.train_sync(tr)
            train_seconds.append(time.perf_counter() - started)
            train_cpu_seconds.append(time.process_time() - cpu_started)
            version = engine.list_versions()[0]
            size = version.manifest["size_bytes"]
            parses = []
            for ex in te.examples:
                t0, c0 = time.perf_counter(), time.thread_time()
                parses.append(engine.parse_sync(ex.text))
                cpu_latencies.append((time.thread_time() - c0) * 1000)
                latencies.append((time.perf_counter() - t0) * 1000)
            closed.append(score([e.intent for e in te.examples], [p.intent for p in parses],
                                [p.confidence for p in parses], [p.confident for p in parses],
                                {OUT_OF_SCOPE_ROW, OUT_OF_SCOPE}))
        # out of scope: 10 % of intents never seen in training
        held = held_out_intents(tr, task["oos_fraction"], task["seed"] + n)
        with tempfile.TemporaryDirectory() as tmp:
            engine = EmbeddedEngine(Path(tmp), target_precision=task["target_precision"], **options)
            engine.train_sync(subset(tr, lambda e, h=held: e.intent not in h))
            parses = [engine.parse_sync(e.text) for e in te.examples]
            oos.append(score([e.intent for e in te.examples], [p.intent for p in parses],
                             [p.confidence for p in parses], [p.confident for p in parses], held))
    results["closed"] = {k: float(np.mean([r[k] for r in closed if r.get(k) is not None]))
                         for k in ("accuracy", "macro_f1", "answered_precision", "coverage")}
    real_oos = [r["oos_recall"] for r in closed if r.get("oos_recall") is not None]
    # Real out-of-scope rows (empty intents in a test CSV, the shipped out_of_scope class): their share not
    # answered, with all intents trained (the closed protocol).
    results["closed"]["oos_recall"] = float(np.mean(real_oos)) if real_oos else None
    if task.get("special"):
        with tempfile.TemporaryDirectory() as tmp:
            engine = EmbeddedEngine(Path(tmp), target_precision=task["target_precision"], **options)
            engine.train_sync(train)
            results["special"] = special_evaluations(engine)
    results["oos"] = {k: float(np.mean([r[k] for r in oos if r.get(k) is not None]))
                      for k in ("accuracy", "oos_recall", "answered_precision", "oos_at_95", "coverage")}
    results["train_seconds"] = float(np.mean(train_seconds))
    # CPU seconds of the training (all its threads): on a shared machine the wall time is mostly waiting.
    results["train_cpu_seconds"] = float(np.mean(train_cpu_seconds))
    results["n_train"] = len(runs[0][0].examples)
    results["p50_ms"] = float(np.percentile(latencies, 50))
    results["p99_ms"] = float(np.percentile(latencies, 99))
    results["cpu_p99_ms"] = float(np.percentile(cpu_latencies, 99))
    results["size_bytes"] = size
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def run_embedded(train: Path, test: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    task = {"train": str(train), "test": str(test) if test else None, "folds": args.folds, "seed": args.seed,
            "oos_fraction": args.oos_fraction, "target_precision": args.target_precision,
            "features": args.features, "lang": args.lang,
            "special": train == DEFAULT_SETS["shipped"][0] and not args.lang}
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(task)], capture_output=True,
                         text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- Rasa -----------------------------------------------------------------------------------------------

class RasaServer:
    """A `rasa run --enable-api` child process on a free loopback port."""

    def __init__(self, venv: Path, config: Path) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-rasa-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = config
        self.log = (self.workdir / "rasa.log").open("wb")
        self.process = subprocess.Popen(
            [str(venv / "bin" / "rasa"), "run", "--enable-api", "-i", "127.0.0.1", "-p", str(self.port)],
            cwd=self.workdir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"rasa exited: {(self.workdir / 'rasa.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/version", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise RuntimeError("rasa did not start in 300 s")

    def peak_rss_mb(self) -> float:
        return memory_mb(self.process.pid, "VmHWM")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.log.close()


async def rasa_run(server: RasaServer, train: TrainingData, test: TrainingData, held: set[str]) -> dict[str, Any]:
    engine = RasaEngine(server.url, timeout_seconds=60, config_path=server.config)
    try:
        started = time.perf_counter()
        version = await engine.train(subset(train, lambda e: e.intent not in held))
        seconds = time.perf_counter() - started
        parses, latencies = [], []
        for ex in test.examples:
            t0 = time.perf_counter()
            parses.append(await engine.parse(ex.text))
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        await engine.aclose()
    result = score([e.intent for e in test.examples], [p.intent for p in parses],
                   [p.confidence for p in parses], [p.confident for p in parses], held)
    model = server.workdir / "models" / f"{version}.tar.gz"
    result.update(train_seconds=seconds, p50_ms=float(np.percentile(latencies, 50)),
                  p99_ms=float(np.percentile(latencies, 99)),
                  size_bytes=model.stat().st_size if model.exists() else 0, peak_rss_mb=server.peak_rss_mb())
    return result


def rasa_for_set(server: RasaServer, train_path: Path, test_path: Path | None,
                 args: argparse.Namespace) -> dict[str, Any]:
    train = load_training_data(train_path)
    if test_path is None:
        train, test = folds(train, args.folds, args.seed)[0]
    else:
        test = load_training_data(test_path)
    out: dict[str, Any] = {"n_train": len(train.examples)}
    held = held_out_intents(train, args.oos_fraction, args.seed)
    oos = asyncio.run(rasa_run(server, train, test, held))
    out["oos"] = oos
    out.update({k: oos[k] for k in ("train_seconds", "p50_ms", "p99_ms", "size_bytes", "peak_rss_mb")})
    if args.rasa_closed:
        closed = asyncio.run(rasa_run(server, train, test, set()))
        out["closed"] = closed
        out.update({k: closed[k] for k in ("train_seconds", "p50_ms", "p99_ms", "size_bytes", "peak_rss_mb")})
    return out


def rasa_config(epochs: int | None) -> Path:
    if epochs is None:
        return DEFAULT_RASA_CONFIG
    import yaml

    config = yaml.safe_load(DEFAULT_RASA_CONFIG.read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = epochs
    path = Path(tempfile.mkdtemp()) / "config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


# --- report ---------------------------------------------------------------------------------------------

def fmt(value: Any, pattern: str = "{:.1%}") -> str:
    return "-" if value is None else pattern.format(value)


def row(name: str, engine: str, r: dict[str, Any]) -> str:
    closed, oos = r.get("closed", {}), r.get("oos", {})
    return (f"| {name} | {engine} | {r['n_train']} | {fmt(closed.get('accuracy'))} | {fmt(closed.get('macro_f1'))} "
            f"| {fmt(closed.get('answered_precision'))} | {fmt(closed.get('coverage'))} "
            f"| {fmt(closed.get('oos_recall'))} | {fmt(oos.get('accuracy'))} | {fmt(oos.get('oos_recall'))} "
            f"| {fmt(oos.get('answered_precision'))} "
            f"| {fmt(oos.get('oos_at_95'))} | {fmt(oos.get('coverage'))} "
            f"| {r['train_seconds']:.1f} | {fmt(r.get('train_cpu_seconds'), '{:.1f}')} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {fmt(r.get('cpu_p99_ms'), '{:.2f}')} "
            f"| {r['size_bytes'] / 1e6:.1f} | {r['peak_rss_mb']:.0f} |")


HEADER = ("| set | engine | train n | acc | macro-F1 | ans_prec | cover | real_oos | acc90 | oos_rec | ans_prec90 "
          "| oos@95 | cover90 | train s | train cpu s | p50 ms | p99 ms | cpu p99 ms | size MB | peak MB |\n"
          + "|---" * 20 + "|")


def special_table(special: dict[str, Any]) -> str:
    long, oos, multi = special["long"], special["near_domain_oos"], special["multi"]
    holdout, lat = special["near_domain_oos_holdout"], special["letters_latency"]
    lines = [
        "| evaluation | n | result |", "|---|---|---|",
        f"| long letters: accuracy | {long['n']} | {fmt(long['accuracy'])} |",
        f"| long letters: coverage (answered) | {long['n']} | {fmt(long['coverage'])} |",
        f"| long letters: answered precision | {long['n']} | {fmt(long['answered_precision'])} |",
        f"| near-domain out-of-scope not answered | {oos['n']} | {fmt(oos['not_answered'])} |",
        f"| near-domain out-of-scope not answered, held-out set | {holdout['n']} | {fmt(holdout['not_answered'])} |",
        f"| letters parse ms: p50 / p99 wall, p50 / p99 CPU (5 passes) | {long['n']} "
        f"| {lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}, {lat['cpu_p50_ms']:.2f} / {lat['cpu_p99_ms']:.2f} |",
        f"| two requests: both found | {multi['n']} | {fmt(multi['both_found'])} |",
        f"| two requests: one answered, other dropped | {multi['n']} | {fmt(multi['one_answered_other_dropped'])} |",
    ]
    details = [f"# long misses: {long['misses']}", f"# near-domain answered: {oos['answered']}",
               f"# two requests found: {multi['found']}"]
    return "\n".join(lines + details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, help="train file (CSV, Rasa YAML or JSON)")
    parser.add_argument("--test", type=Path, help="test file; omitted: k-fold cross-validation of --train")
    parser.add_argument("--name", default="custom")
    parser.add_argument("--sets", default="banking77,hwu64,shipped", help="default sets to run")
    parser.add_argument("--skip-rasa", action="store_true")
    parser.add_argument("--rasa-closed", action="store_true", help="also run Rasa on all intents")
    parser.add_argument("--rasa-epochs", type=int, help="override DIET epochs of nlu/data/rasa/config.yml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oos-fraction", type=float, default=0.1)
    parser.add_argument("--target-precision", type=float, default=0.95)
    parser.add_argument("--features", help="embedded feature blocks besides n-grams, comma separated "
                        "(lemmas,stems,vectors,sentence,english_sentence,universal,spelling; empty: none); "
                        "default: the engine's")
    parser.add_argument("--lang", help="only examples in this language (ru or en)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(embedded_worker(json.loads(args.worker))))
        return
    sets = {args.name: (args.train, args.test)} if args.train else {
        name: DEFAULT_SETS[name] for name in args.sets.split(",") if name}
    use_rasa = not args.skip_rasa and (RASA_VENV / "bin" / "rasa").exists()
    if not args.skip_rasa and not use_rasa:
        print(f"# Rasa venv not found at {RASA_VENV}: Rasa rows skipped (scripts/rasa-venv.sh builds it)")
    results: dict[str, dict[str, Any]] = {}
    specials: dict[str, dict[str, Any]] = {}
    print(HEADER, flush=True)
    server = RasaServer(RASA_VENV, rasa_config(args.rasa_epochs)) if use_rasa else None
    try:
        for name, (train, test) in sets.items():
            results[f"{name}/embedded"] = r = run_embedded(train, test, args)
            print(row(name, "embedded", r), flush=True)
            if "special" in r:
                specials[name] = r["special"]
            if server is not None:
                results[f"{name}/rasa"] = r = rasa_for_set(server, train, test, args)
                print(row(name + ("" if test else " (fold 1)"), "rasa DIET", r), flush=True)
    finally:
        if server is not None:
            server.stop()
    for name, special in specials.items():
        print(f"\n{name}: trained on all of it, parsed one text at a time\n{special_table(special)}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
