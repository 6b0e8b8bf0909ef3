"""`switchboard nlu ...` commands, run through typer's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlu.cli import app
from nlu.data import load_training_data
from nlu.protocol import TrainingData, TrainingExample

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("cli") / "models"
    result = runner.invoke(app, ["train", "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert "trained" in result.output
    return model_dir


def test_parse_batch_from_stdin(trained_dir: Path) -> None:
    lines = ["ne rabotaet internet", "где мой заказ ORD-123456?", "", "😀😀", "asdkjh qweqwe zxcvb",
             "what time do you open"]
    result = runner.invoke(app, ["parse", "-", "--model-dir", str(trained_dir)], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in rows] == lines
    assert set(rows[0]) >= {"text", "intent", "confidence", "action", "entities", "language"}
    assert (rows[0]["intent"], rows[0]["action"], rows[0]["language"]) == ("internet_down", "answer", "ru")
    assert rows[1]["entities"][0]["value"] == "ORD-123456"
    assert [r["action"] for r in rows[2:5]] == ["escalate"] * 3
    assert (rows[5]["intent"], rows[5]["language"]) == ("office_hours", "en")


def test_parse_one_text(trained_dir: Path) -> None:
    result = runner.invoke(app, ["parse", "как оплатить картой", "--model-dir", str(trained_dir)])
    assert result.exit_code == 0
    assert json.loads(result.output)["intent"] == "payment_methods"


def test_parse_without_model_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["parse", "hello", "--model-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "train" in result.output


def test_export_import_round_trip(tmp_path: Path) -> None:
    exported = tmp_path / "export.yml"
    assert runner.invoke(app, ["export-rasa", str(exported)]).exit_code == 0
    working = tmp_path / "working.yml"
    result = runner.invoke(app, ["import-rasa", str(exported), "--output", str(working)])
    assert result.exit_code == 0, result.output

    # The export writes one block per intent; the shipped data spreads intents over several files.
    def by_intent(data: TrainingData) -> list[TrainingExample]:
        return sorted(data.examples, key=lambda e: (e.intent, e.text))

    assert by_intent(load_training_data(working)) == by_intent(load_training_data())
    project = tmp_path / "project"
    assert runner.invoke(app, ["export-rasa", str(project)]).exit_code == 0
    assert {p.name for p in project.iterdir()} == {"config.yml", "domain.yml", "data"}
    assert by_intent(load_training_data(project / "data" / "nlu.yml")) == by_intent(load_training_data())
    assert load_training_data(project / "domain.yml").responses == load_training_data().responses
    as_json = tmp_path / "export.json"
    assert runner.invoke(app, ["export-rasa", str(as_json)]).exit_code == 0
    assert load_training_data(as_json).examples == load_training_data().examples


def test_import_of_broken_yaml_names_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("nlu:\n- intent: greeting\n  examples: |\n    - hi\n  - oops: [\n", encoding="utf-8")
    result = runner.invoke(app, ["import-rasa", str(broken), "--output", str(tmp_path / "w.yml")])
    assert result.exit_code == 1
    assert "line" in result.output


def test_train_with_csv_and_evaluate(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    rows = ["text,intent"] + [f"hello number {i},greeting" for i in range(10)] \
        + [f"my bill {i} is wrong,billing_question" for i in range(10)]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["train", "--data", str(csv), "--model-dir", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["evaluate", "--data", str(csv), "--folds", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["accuracy"] >= 0.9
    active = runner.invoke(app, ["evaluate", "--data", str(csv), "--active", "--model-dir", str(tmp_path / "m")])
    assert active.exit_code == 0, active.output
    assert "accuracy" in active.output


@pytest.mark.parametrize(("suffix", "document", "reason"), [
    (".yml", "nlu: " + "[" * 100_000 + "]" * 100_000, "nested deeper than 32 levels"),
    (".json", "[" * 100_000 + "]" * 100_000, "nested too deep"),
    (".yml", "a0: &a0 [hi, hi, hi, hi, hi, hi, hi, hi, hi]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)) + "nlu: *a8\n",
     "more than 1000000 values"),
])
def test_import_of_a_hostile_document_says_why_like_the_api(tmp_path: Path, suffix: str, document: str,
                                                            reason: str) -> None:
    """The CLI gives the reason the API gives, instead of a RecursionError traceback."""
    hostile = tmp_path / f"hostile{suffix}"
    hostile.write_text(document, encoding="utf-8")
    result = runner.invoke(app, ["import-rasa", str(hostile), "--output", str(tmp_path / "w.yml")])
    assert result.exit_code == 1
    assert reason in result.output
    assert not (tmp_path / "w.yml").exists()
