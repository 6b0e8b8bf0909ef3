"""`switchboard nlu ...`: train, evaluate, import/export Rasa data and parse with the embedded engine.

The command functions are thin; the work is in plain functions (`train_from_data`, `cross_validate`, ...)
that the API and admin jobs can call too.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from sklearn.model_selection import KFold

from nlu.data import DEFAULT_DATA_DIR, RASA_YAML_VERSION, dump_rasa_json, dump_rasa_yaml, load_training_data
from nlu.embedded import EmbeddedEngine, evaluate_scored
from nlu.errors import NluError
from nlu.protocol import EvaluationReport, Parse, ProgressCallback, TrainingData
from nlu.rasa import rasa_config, rasa_domain, rasa_nlu_yaml

app = typer.Typer(help="Intent engine: train, evaluate, import/export Rasa data, parse.", no_args_is_help=True)

DEFAULT_MODEL_DIR = Path("var/models")
WORKING_DATA = Path("var/nlu/nlu.yml")
"""Where `import-rasa` puts imported data and where `train` looks first, before the shipped data."""

ModelDirOption = Annotated[Path, typer.Option("--model-dir", help="Directory of model versions.")]
DataOption = Annotated[Path | None, typer.Option("--data", help="Rasa YAML/JSON, CSV, or a directory of them.")]


def resolve_data_path(data: Path | None) -> Path:
    """The data to use: the given path, else imported working data, else the shipped default data."""
    if data is not None:
        return data
    return WORKING_DATA if WORKING_DATA.exists() else DEFAULT_DATA_DIR


def train_from_data(data_path: Path | None, model_dir: Path, *, target_precision: float = 0.95,
                    activate: bool = True, progress: ProgressCallback | None = None) -> tuple[str, TrainingData]:
    """Load data, train a new embedded model version in model_dir, activate it; returns (version, data)."""
    data = load_training_data(resolve_data_path(data_path))
    engine = EmbeddedEngine(model_dir, target_precision=target_precision)
    version = engine.train_sync(data, progress, activate=activate)
    return version, data


def cross_validate(data: TrainingData, *, folds: int = 5, target_precision: float = 0.95,
                   progress: ProgressCallback | None = None, seed: int = 0) -> EvaluationReport:
    """K-fold estimate of how a model trained on this data will do (no files written)."""
    examples = data.examples
    n = len(examples)
    if n < folds * 2:
        raise NluError(f"need at least {folds * 2} examples to cross-validate, got {n}")
    engine = EmbeddedEngine(Path("."), target_precision=target_precision)
    truth: list[str] = []
    predicted: list[str] = []
    confidence: list[float] = []
    answered: list[bool] = []
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(n))):
        if progress:
            progress(k / folds, f"fold {k + 1}/{folds}")
        part = TrainingData(examples=[examples[i] for i in train_idx], synonyms=data.synonyms,
                            regexes=data.regexes, lookups=data.lookups)
        model, _ = engine.fit(part)
        probs = engine.probabilities(model, [examples[i].text for i in test_idx])
        top = probs.max(axis=1)
        predicted.extend(model.classes[probs.argmax(axis=1)].tolist())
        confidence.extend(top.tolist())
        answered.extend((top >= model.threshold).tolist())
        truth.extend(examples[i].intent for i in test_idx)
    if progress:
        progress(1.0, "done")
    return evaluate_scored(truth=truth, predicted=predicted, confidence=np.array(confidence), threshold=1.0,
                           known_intents=data.intents, answered=np.array(answered))


def import_rasa(source: Path, destination: Path = WORKING_DATA) -> TrainingData:
    """Validate Rasa data (YAML file/dir or JSON) and store it as the working data in Rasa YAML."""
    data = load_training_data(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(dump_rasa_yaml(data), encoding="utf-8")
    return data


def export_rasa(destination: Path, data_path: Path | None = None) -> TrainingData:
    """Write data as Rasa: a .yml/.yaml or .json file, or (for a directory) a ready-to-train Rasa project whose
    config names the data's language. Empty data is an error (nothing is written)."""
    data = load_training_data(resolve_data_path(data_path))
    if not data.examples and not data.responses:
        raise NluError("there is no training data to export (the database has no intents: import or create "
                       "some first)")
    suffix = destination.suffix.lower()
    if suffix in (".yml", ".yaml"):
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(dump_rasa_yaml(data), encoding="utf-8")
    elif suffix == ".json":
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(dump_rasa_json(data), encoding="utf-8")
    else:
        (destination / "data").mkdir(parents=True, exist_ok=True)
        config = yaml.safe_dump(rasa_config(data), allow_unicode=True, sort_keys=False)
        (destination / "config.yml").write_text(config, encoding="utf-8")
        domain = yaml.safe_dump({"version": RASA_YAML_VERSION, **rasa_domain(data)}, allow_unicode=True,
                                sort_keys=False)
        (destination / "domain.yml").write_text(domain, encoding="utf-8")
        (destination / "data" / "nlu.yml").write_text(rasa_nlu_yaml(data), encoding="utf-8")
    return data


def parse_to_json(parse: Parse) -> dict[str, Any]:
    """One parse as the JSON object `nlu parse` prints."""
    return {
        "text": parse.text,
        "intent": parse.intent,
        "confidence": round(parse.confidence, 4),
        "action": "answer" if parse.confident and parse.intent is not None else "escalate",
        "entities": [{"type": e.type, "value": e.value, "start": e.start, "end": e.end, "text": e.text}
                     for e in parse.entities],
        "language": parse.language,
        "model_version": parse.model_version,
    }


def parse_lines(engine: EmbeddedEngine, lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Parse one message per line (trailing newline removed)."""
    for line in lines:
        yield parse_to_json(engine.parse_sync(line.rstrip("\r\n")))


def _load_engine(model_dir: Path) -> EmbeddedEngine:
    engine = EmbeddedEngine(model_dir)
    try:
        engine.load_active()
    except NluError as exc:
        typer.echo(f"error: {exc}. Run `switchboard nlu train` first.", err=True)
        raise typer.Exit(2) from exc
    return engine


class _Bar:
    """Adapts the engine's (fraction, stage) progress reports to a typer progress bar."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.done = 0

    def __call__(self, fraction: float, stage: str) -> None:
        step = int(fraction * 100) - self.done
        self.bar.label = f"{stage:<28}"
        if step > 0:
            self.bar.update(step)
            self.done += step


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command()
def train(data: DataOption = None, model_dir: ModelDirOption = DEFAULT_MODEL_DIR,
          target_precision: Annotated[float, typer.Option(min=0.5, max=1.0)] = 0.95,
          activate: Annotated[bool, typer.Option(help="Make the new version active.")] = True) -> None:
    """Train a new model version from Rasa YAML/JSON or CSV data and activate it."""
    try:
        with typer.progressbar(length=100, label="training".ljust(28), file=sys.stderr) as bar:
            version, loaded = train_from_data(data, model_dir, target_precision=target_precision,
                                              activate=activate, progress=_Bar(bar))
    except NluError as exc:
        raise _fail(exc) from exc
    for warning in loaded.warnings:
        typer.echo(f"warning: {warning}", err=True)
    engine = EmbeddedEngine(model_dir)
    manifest = next(v.manifest for v in engine.list_versions() if v.version == version)
    cv = manifest.get("cross_validation", {})
    typer.echo(f"trained {version}: {manifest['n_examples']} examples, {len(manifest['intents'])} intents, "
               f"{manifest['train_seconds']:.1f} s; threshold {manifest['threshold']:.3f}; "
               f"cv accuracy {cv.get('accuracy')}, answered precision {cv.get('answered_precision')}, "
               f"coverage {cv.get('coverage')}, oos recall {cv.get('oos_recall')}"
               + ("" if activate else " (not activated)"))


@app.command()
def evaluate(data: DataOption = None, model_dir: ModelDirOption = DEFAULT_MODEL_DIR,
             active: Annotated[bool, typer.Option(help="Score the active model instead of cross-validating.")]
             = False,
             folds: Annotated[int, typer.Option(min=2, max=20)] = 5,
             as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """Report accuracy, macro-F1, per-intent scores and confusions (k-fold by default)."""
    try:
        loaded = load_training_data(resolve_data_path(data))
        if active:
            report = _load_engine(model_dir).evaluate_sync(loaded)
        else:
            with typer.progressbar(length=100, label="cross-validating".ljust(28), file=sys.stderr) as bar:
                report = cross_validate(loaded, folds=folds, progress=_Bar(bar))
    except NluError as exc:
        raise _fail(exc) from exc
    if as_json:
        typer.echo(json.dumps({
            "accuracy": report.accuracy, "macro_f1": report.macro_f1, "oos_recall": report.oos_recall,
            "answered_precision": report.answered_precision, "n_examples": report.n_examples,
            "per_intent": report.per_intent, "confused_pairs": report.confused_pairs,
        }, ensure_ascii=False, indent=2))
        return
    typer.echo(f"examples {report.n_examples}  accuracy {report.accuracy:.3f}  macro-F1 {report.macro_f1:.3f}  "
               f"answered precision {report.answered_precision}  oos recall {report.oos_recall}")
    typer.echo(f"{'intent':<24}{'precision':>10}{'recall':>8}{'f1':>7}{'n':>6}")
    for intent, scores in sorted(report.per_intent.items()):
        typer.echo(f"{intent:<24}{scores['precision']:>10.3f}{scores['recall']:>8.3f}{scores['f1']:>7.3f}"
                   f"{int(scores['support']):>6}")
    if report.confused_pairs:
        typer.echo("most confused (true -> predicted):")
        for true, predicted, count in report.confused_pairs:
            typer.echo(f"  {true} -> {predicted}: {count}")


@app.command("import-rasa")
def import_rasa_command(path: Path,
                        output: Annotated[Path, typer.Option("--output", help="Working data file.")]
                        = WORKING_DATA) -> None:
    """Validate Rasa data (YAML or JSON) and make it the working training data."""
    try:
        data = import_rasa(path, output)
    except NluError as exc:
        raise _fail(exc) from exc
    for warning in data.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"imported {len(data.examples)} examples of {len(data.intents)} intents into {output}")


@app.command("export-rasa")
def export_rasa_command(path: Path, data: DataOption = None) -> None:
    """Write the training data as Rasa YAML (.yml), Rasa JSON (.json) or a Rasa project directory."""
    try:
        exported = export_rasa(path, data)
    except NluError as exc:
        raise _fail(exc) from exc
    typer.echo(f"exported {len(exported.examples)} examples of {len(exported.intents)} intents to {path}")


@app.command()
def parse(text: Annotated[str, typer.Argument(help="The message, or '-' to read one message per line.")],
          model_dir: ModelDirOption = DEFAULT_MODEL_DIR) -> None:
    """Classify a message with the active model and print JSON (one object per line for '-')."""
    engine = _load_engine(model_dir)
    lines: Iterable[str] = sys.stdin if text == "-" else [text]
    for result in parse_lines(engine, lines):
        typer.echo(json.dumps(result, ensure_ascii=False))
