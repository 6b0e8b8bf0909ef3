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
from nlu.embedded import EmbeddedEngine, choose_threshold  # noqa: E402
from nlu.protocol import TrainingData  # noqa: E402
from nlu.rasa import DEFAULT_RASA_CONFIG, RasaEngine  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
DEFAULT_SETS = {
    "banking77": (DATASETS / "banking77" / "train.csv", DATASETS / "banking77" / "test.csv"),
    "hwu64": (DATASETS / "hwu64" / "train.json", DATASETS / "hwu64" / "test.json"),
    "shipped": (REPO / "nlu" / "data" / "default", None),
}
RASA_VENV = Path(os.environ.get("SWITCHBOARD_RASA_VENV", "/opt/switchboard/rasa-venv"))


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

def embedded_worker(task: dict[str, Any]) -> dict[str, Any]:
    train = load_training_data(task["train"])
    test = load_training_data(task["test"]) if task.get("test") else None
    runs = []
    if test is None:
        runs = folds(train, task["folds"], task["seed"])
    else:
        runs = [(train, test)]
    results: dict[str, Any] = {}
    closed: list[dict[str, Any]] = []
    oos: list[dict[str, Any]] = []
    latencies: list[float] = []
    train_seconds: list[float] = []
    size = 0
    for n, (tr, te) in enumerate(runs):
        # closed set
        with tempfile.TemporaryDirectory() as tmp:
            engine = EmbeddedEngine(Path(tmp), target_precision=task["target_precision"])
            started = time.perf_counter()
            engine.train_sync(tr)
            train_seconds.append(time.perf_counter() - started)
            version = engine.list_versions()[0]
            size = version.manifest["size_bytes"]
            parses = []
            for ex in te.examples:
                t0 = time.perf_counter()
                parses.append(engine.parse_sync(ex.text))
                latencies.append((time.perf_counter() - t0) * 1000)
            closed.append(score([e.intent for e in te.examples], [p.intent for p in parses],
                                [p.confidence for p in parses], [p.confident for p in parses], set()))
        # out of scope: 10 % of intents never seen in training
        held = held_out_intents(tr, task["oos_fraction"], task["seed"] + n)
        with tempfile.TemporaryDirectory() as tmp:
            engine = EmbeddedEngine(Path(tmp), target_precision=task["target_precision"])
            engine.train_sync(subset(tr, lambda e, h=held: e.intent not in h))
            parses = [engine.parse_sync(e.text) for e in te.examples]
            oos.append(score([e.intent for e in te.examples], [p.intent for p in parses],
                             [p.confidence for p in parses], [p.confident for p in parses], held))
    results["closed"] = {k: float(np.mean([r[k] for r in closed if r.get(k) is not None]))
                         for k in ("accuracy", "macro_f1")}
    results["oos"] = {k: float(np.mean([r[k] for r in oos if r.get(k) is not None]))
                      for k in ("accuracy", "oos_recall", "answered_precision", "oos_at_95", "coverage")}
    results["train_seconds"] = float(np.mean(train_seconds))
    results["n_train"] = len(runs[0][0].examples)
    results["p50_ms"] = float(np.percentile(latencies, 50))
    results["p99_ms"] = float(np.percentile(latencies, 99))
    results["size_bytes"] = size
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return results


def run_embedded(train: Path, test: Path | None, args: argparse.Namespace) -> dict[str, Any]:
    task = {"train": str(train), "test": str(test) if test else None, "folds": args.folds, "seed": args.seed,
            "oos_fraction": args.oos_fraction, "target_precision": args.target_precision}
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
            f"| {fmt(oos.get('accuracy'))} | {fmt(oos.get('oos_recall'))} | {fmt(oos.get('answered_precision'))} "
            f"| {fmt(oos.get('oos_at_95'))} | {fmt(oos.get('coverage'))} "
            f"| {r['train_seconds']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {r['size_bytes'] / 1e6:.1f} | {r['peak_rss_mb']:.0f} |")


HEADER = ("| set | engine | train n | acc | macro-F1 | acc90 | oos_rec | ans_prec | oos@95 | cover | train s "
          "| p50 ms | p99 ms | size MB | peak MB |\n" + "|---" * 15 + "|")


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
    print(HEADER, flush=True)
    server = RasaServer(RASA_VENV, rasa_config(args.rasa_epochs)) if use_rasa else None
    try:
        for name, (train, test) in sets.items():
            results[f"{name}/embedded"] = r = run_embedded(train, test, args)
            print(row(name, "embedded", r), flush=True)
            if server is not None:
                results[f"{name}/rasa"] = r = rasa_for_set(server, train, test, args)
                print(row(name + ("" if test else " (fold 1)"), "rasa DIET", r), flush=True)
    finally:
        if server is not None:
            server.stop()
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
