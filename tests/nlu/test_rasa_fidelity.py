"""Issue 18: every part of an admin's Rasa NLU data is read, kept and written back, on real-shaped fixtures
(tests/nlu/fixtures/rasa: moodbot, formbot, retrieval intents, roles and groups, lookups in subfolders, legacy JSON,
Rasa 1.x Markdown, a Russian Markdown bot)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from nlu.cli import export_rasa
from nlu.data import (
    dump_rasa_json,
    dump_rasa_yaml,
    load_rasa_yaml,
    load_training_data,
    loads,
    merge,
    parse_markup,
    render_markup,
    sniff_format,
)
from nlu.errors import DataFormatError, NluError
from nlu.protocol import ExampleEntity
from nlu.rasa import rasa_config, rasa_domain

FIXTURES = Path(__file__).parent / "fixtures" / "rasa"
ALL = ["moodbot", "formbot", "retrieval", "sara_like", "markdown", "ru_markdown", "legacy.json", "variants"]


@pytest.mark.parametrize("name", ALL)
def test_import_export_import_is_lossless_in_yaml_and_json(name: str) -> None:
    data = load_training_data(FIXTURES / name)
    again = loads(dump_rasa_yaml(data), "yaml")
    assert again.examples == data.examples
    assert (again.synonyms, again.regexes, again.lookups) == (data.synonyms, data.regexes, data.lookups)
    assert again.intent_metadata == data.intent_metadata
    assert again.responses == data.responses
    assert again.response_variants == data.response_variants
    via_json = loads(dump_rasa_json(data), "json")
    assert via_json.examples == data.examples


def test_entity_annotations_roles_groups_and_inline_synonyms_are_kept() -> None:
    """Defect 5: every annotation was stripped."""
    formbot = load_training_data(FIXTURES / "formbot")
    assert sum(len(e.entities) for e in formbot.examples) == 16
    pub = next(e for e in formbot.examples if e.text == "gastro pub please")
    assert pub.entities == (ExampleEntity(0, 10, "cuisine", value="gastropub"),)
    sara = load_training_data(FIXTURES / "sara_like")
    flight = next(e for e in sara.examples if e.text.startswith("I want a flight"))
    assert [(flight.text[a.start:a.end], a.entity, a.role, a.value) for a in flight.entities] == [
        ("London", "city", "departure", None), ("Paris", "city", "destination", "paris")]
    pizza = next(e for e in sara.examples if e.text.startswith("I'd like"))
    assert [(a.entity, a.group) for a in pizza.entities] == [("size", "1"), ("topping", "1"), ("size", "2"),
                                                             ("topping", "2")]
    pepperoni = next(e for e in sara.examples if "pepperoni" in e.text)
    assert {(a.entity, a.role) for a in pepperoni.entities} == {("topping", None), ("ingredient", "meat")}
    exported = dump_rasa_yaml(sara)
    assert '[London]{"entity": "city", "role": "departure"}' in exported
    assert '[pepperoni][{"entity": "topping"}, {"entity": "ingredient", "role": "meat"}]' in exported


def test_list_form_examples_keep_their_metadata_and_text() -> None:
    """Defect 4: `- text: ...` items were stored as Python dict text."""
    sara = load_training_data(FIXTURES / "sara_like")
    flights = [e for e in sara.examples if e.intent == "book_flight"]
    assert not any(e.text.startswith("{") for e in flights)
    assert [e.metadata for e in flights] == [{"sentiment": "neutral"}, None,
                                             {"sentiment": "positive", "annotator": "anna"}]
    assert sara.intent_metadata == {"book_flight": {"source": "sara"}}
    exported = yaml.safe_load(dump_rasa_yaml(sara))
    item = next(i for i in exported["nlu"] if i.get("intent") == "book_flight")
    assert item["metadata"] == {"source": "sara"}
    assert item["examples"][0]["metadata"] == {"sentiment": "neutral"}


def test_a_directory_is_read_with_its_subfolders() -> None:
    """Defect 6: Sara's lookups/products.yml was ignored."""
    sara = load_training_data(FIXTURES / "sara_like")
    assert sara.lookups["product"] == ["rasa x", "rasa enterprise", "rasa pro", "rasa open source"]
    assert "buy_rasa_x" in sara.intents


def test_duplicates_and_conflicts_are_listed_with_file_and_line() -> None:
    sara = load_training_data(FIXTURES / "sara_like")
    duplicate = next(w for w in sara.warnings if w.startswith("duplicate"))
    conflict = next(w for w in sara.warnings if w.startswith("conflict"))
    assert "'hello'" in duplicate and "nlu.yml, line 32" in duplicate
    assert "'hi'" in conflict and "nlu.yml, line 37" in conflict and "'greet' and 'goodbye'" in conflict


def test_retrieval_intents_keep_group_and_name_and_their_responses() -> None:
    data = load_training_data(FIXTURES / "retrieval")
    assert {"faq/ask_channels", "faq/ask_languages", "chitchat/ask_name", "chitchat/ask_weather"} <= set(data.intents)
    assert data.responses["faq/ask_channels"]["en"].startswith("I can be connected")
    domain = rasa_domain(data)
    assert domain["intents"] == ["chitchat", "faq", "greet"]
    assert "utter_faq/ask_channels" in domain["responses"]
    assert any(c.get("name") == "ResponseSelector" for c in rasa_config(data)["pipeline"])


def test_every_variant_of_a_response_is_kept_in_order_per_language() -> None:
    """A response with several variants kept only its first text per language."""
    data = load_training_data(FIXTURES / "variants")
    assert data.variants("greet", "en") == ["Hey! How can I help?", "Hello! What can I do for you?",
                                            "Hi there, I'm listening."]
    assert data.variants("greet", "ru") == ["Здравствуйте! Чем помочь?", "Добрый день! Что у вас случилось?",
                                            "Привет! Я слушаю."]
    assert data.variants("ask_hours", "en") == ["We answer around the clock."]
    assert data.variants("ask_hours", "de") == []
    assert [v["text"] for v in rasa_domain(data)["responses"]["utter_greet"]] == [
        *data.variants("greet", "en"), *data.variants("greet", "ru")]
    merged = merge([data, load_training_data(FIXTURES / "variants")])  # the same file twice: nothing doubled
    assert merged.variants("greet", "en") == data.variants("greet", "en")


@pytest.mark.parametrize(("document", "line", "reason"), [
    ("nlu:\n- intent: greet\n  examples: |\n    - hi\n- intent: faq/\n  examples: |\n    - x\n", 5, "group/name"),
    ("nlu:\n- intent: greet\n  examples: |\n    - hi\n- intent: faq/a/b\n  examples: |\n    - x\n", 5, "group/name"),
    ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    - bad [x]{not json}\n", 5, "not valid JSON"),
    ("nlu:\n- intent: greet\n  examples: |\n    - hi\n    - bad [x](two words)\n", 5, "needs an entity name"),
    ("nlu:\n- intent: greet\n  examples:\n  - text: hi\n  - text: yo\n    meta: 1\n", 5, "unknown keys"),
    ("nlu:\n- intent: greet\n  examples:\n  - text: hi\n    metadata: [1]\n", 4, "metadata must be a mapping"),
    ("nlu:\n- regex: zip\n  examples: |\n    - ok\n    - ([0-9\n", 5, "invalid pattern"),
])
def test_malformed_items_are_refused_with_the_file_and_line(document: str, line: int, reason: str) -> None:
    with pytest.raises(DataFormatError) as caught:
        load_rasa_yaml(document, source="upload.yml")
    assert caught.value.line == line and reason in str(caught.value), str(caught.value)
    assert str(caught.value).startswith(f"upload.yml, line {line}: ")


def test_legacy_json_keeps_entities_roles_metadata_and_refuses_bad_spans() -> None:
    data = load_training_data(FIXTURES / "legacy.json")
    mexican = next(e for e in data.examples if "mexican" in e.text)
    assert [(mexican.text[a.start:a.end], a.entity, a.role) for a in mexican.entities] == [
        ("mexican", "cuisine", "main"), ("centre", "location", None)]
    typo = next(e for e in data.examples if e.text == "chines restaurant")
    assert typo.metadata == {"typo": True} and typo.entities[0].value == "chinese"
    assert data.conversions and "legacy Rasa JSON" in data.conversions[0]
    bad = '{"rasa_nlu_data": {"common_examples": [{"text": "hi", "intent": "greet", ' \
          '"entities": [{"start": 1, "end": 9, "entity": "x"}]}]}}'
    with pytest.raises(DataFormatError, match="outside the text"):
        loads(bad, "json")


def test_rasa_1_markdown_is_converted_with_a_report() -> None:
    data = load_training_data(FIXTURES / "markdown")
    assert set(data.intents) == {"greet", "check_balance", "faq/ask_fees"}
    assert data.synonyms == {"savings": ["pink pig", "piggy bank"]}
    assert data.regexes == {"account_number": [r"\d{10,12}"]}
    assert data.lookups["banks"] == ["Sberbank", "Tinkoff", "Deutsche Bank"]  # from the file the section names
    assert data.responses["faq/ask_fees"]["en"].startswith("We charge no fees")
    assert not any("utter_greet" in e.text for e in data.examples)  # stories.md is not NLU data
    piggy = next(e for e in data.examples if "pink pig" in e.text)
    assert piggy.entities == (ExampleEntity(24, 32, "account_type", value="savings"),)
    assert any("Rasa 1.x Markdown converted (3 intents, 9 examples, 3 entity annotations" in c
               for c in data.conversions)
    text = (FIXTURES / "markdown" / "data" / "nlu.md").read_text(encoding="utf-8")
    assert sniff_format(text) == "md"
    with pytest.raises(DataFormatError, match=r"lookup file 'lookups/banks\.txt' not found") as caught:
        loads(text, "auto", source="upload")  # an upload has no files beside it
    assert caught.value.line == 30


def test_markup_parse_and_render_are_inverse() -> None:
    raw = 'fly  from [Berlin]{"entity": "city", "role": "departure"} to [SF](city:San Francisco) now'
    text, entities = parse_markup(raw)
    assert text == "fly from Berlin to SF now"
    assert entities == (ExampleEntity(9, 15, "city", role="departure"), ExampleEntity(19, 21, "city",
                                                                                      value="San Francisco"))
    assert parse_markup(render_markup(text, entities)) == (text, entities)
    # Regex patterns keep their brackets (they were stripped as if they were entity markup).
    assert load_training_data(FIXTURES / "formbot").regexes["zipcode"] == ["[0-9]{5}"]


@pytest.mark.parametrize(("name", "language"), [("moodbot", "en"), ("ru_markdown", "ru")])
def test_exported_project_config_names_the_data_language(tmp_path: Path, name: str, language: str) -> None:
    export_rasa(tmp_path / "project", FIXTURES / name)
    config = yaml.safe_load((tmp_path / "project" / "config.yml").read_text(encoding="utf-8"))
    assert config["language"] == language


def test_exporting_no_data_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yml"
    empty.write_text('version: "3.1"\n', encoding="utf-8")
    with pytest.raises(NluError, match="no training data to export"):
        export_rasa(tmp_path / "out.yml", empty)
    assert not (tmp_path / "out.yml").exists()


RASA_VENV = Path(os.environ.get("SWITCHBOARD_RASA_VENV", "/opt/switchboard/rasa-venv"))


@pytest.mark.skipif(not (RASA_VENV / "bin" / "rasa").exists(), reason="the Rasa venv (scripts/rasa-venv.sh) is missing")
def test_an_exported_project_passes_rasa_data_validate(tmp_path: Path) -> None:
    """Everything the fixtures hold (retrieval intents, roles, groups, synonyms, lookups, list-form metadata, legacy
    JSON and Markdown converted) exported as a project loads in Rasa 3.6."""
    data = merge(load_training_data(FIXTURES / name) for name in ("sara_like", "retrieval", "formbot", "legacy.json",
                                                                 "markdown"))
    source = tmp_path / "all.yml"
    source.write_text(dump_rasa_yaml(data), encoding="utf-8")
    export_rasa(tmp_path / "project", source)
    result = subprocess.run([str(RASA_VENV / "bin" / "rasa"), "data", "validate", "--data", "data", "--domain",
                             "domain.yml", "--config", "config.yml"], cwd=tmp_path / "project", capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
