"""Loading and writing training data: Rasa YAML and JSON, CSV, errors and warnings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu.data import dump_rasa_json, dump_rasa_yaml, load_rasa_json, load_rasa_yaml, load_training_data, loads
from nlu.errors import DataFormatError
from nlu.protocol import TrainingData, TrainingExample

YAML = """\
version: "3.1"
nlu:
- intent: greeting
  examples: |
    - привет
    - hello there
    - hello there
- intent: order_status
  examples: |
    - where is [ORD-123456](order_number)
    - статус заказа
- synonym: Turkey
  examples: |
    - турция
- regex: order_number
  examples: |
    - \\bORD-\\d{6}\\b
- lookup: country
  examples: |
    - турция
responses:
  utter_greeting:
  - text: Здравствуйте!
    metadata: {lang: ru}
  - text: Hello!
    lang: en
"""


def test_yaml_is_read_with_all_sections() -> None:
    data = load_rasa_yaml(YAML)
    assert [(e.text, e.intent) for e in data.examples] == [
        ("привет", "greeting"), ("hello there", "greeting"),
        ("where is ORD-123456", "order_status"), ("статус заказа", "order_status"),
    ]
    assert data.synonyms == {"Turkey": ["турция"]}
    assert data.regexes == {"order_number": [r"\bORD-\d{6}\b"]}
    assert data.lookups == {"country": ["турция"]}
    assert data.responses == {"greeting": {"ru": "Здравствуйте!", "en": "Hello!"}}
    assert any("duplicate" in w for w in data.warnings)


def test_yaml_round_trip_keeps_everything() -> None:
    data = load_rasa_yaml(YAML)
    again = load_rasa_yaml(dump_rasa_yaml(data))
    assert again.examples == data.examples
    assert (again.synonyms, again.regexes, again.lookups) == (data.synonyms, data.regexes, data.lookups)
    assert again.responses == data.responses


def test_yaml_round_trip_of_awkward_texts() -> None:
    texts = ["# not a comment", "- dash first", "quote ' and \" marks", "colon: here", "tab\there", "  ё  "]
    data = TrainingData(examples=[TrainingExample(t, "odd") for t in texts]
                        + [TrainingExample("x", "other"), TrainingExample("y", "other")])
    again = load_rasa_yaml(dump_rasa_yaml(data))
    assert [e.text for e in again.examples][: len(texts)] == [" ".join(t.split()) for t in texts]


def test_yaml_syntax_error_names_the_line() -> None:
    broken = YAML.replace("- intent: order_status", "- intent: [order_status")
    with pytest.raises(DataFormatError) as info:
        load_rasa_yaml(broken, source="nlu.yml")
    assert info.value.line is not None
    assert 8 <= info.value.line <= 12
    assert f"nlu.yml, line {info.value.line}" in str(info.value)
    assert "syntax" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just\n- a list\n", "mapping"),
        ("nlu:\n  intent: greeting\n", "list"),
        ("nlu:\n- foo: bar\n", "expected one of intent"),
        ("nlu:\n- intent: greeting\n  examples: 42\n", "examples"),
        ("nlu:\n- intent: greeting\n  examples: |\n    hello\n", "must start with"),
        ("nlu:\n- intent: 'bad name!'\n  examples: |\n    - hi\n", "invalid intent name"),
        ("nlu:\n- regex: r\n  examples: |\n    - ([a-z\n", "invalid pattern"),
        ("stuff: 1\n", "unknown top-level"),
        ("responses:\n  utter_x: hello\n", "list of variants"),
    ],
)
def test_invalid_structure_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(DataFormatError, match=message):
        load_rasa_yaml(text)


def test_single_example_intent_is_a_warning_not_a_crash() -> None:
    data = load_rasa_yaml("nlu:\n- intent: lonely\n  examples: |\n    - just me\n")
    assert len(data.examples) == 1
    assert any("lonely" in w and "only 1" in w for w in data.warnings)


def test_conflicting_labels_keep_the_first() -> None:
    data = load_rasa_yaml(
        "nlu:\n- intent: a\n  examples: |\n    - same text\n    - other\n"
        "- intent: b\n  examples: |\n    - Same Text\n    - more\n")
    assert [e.intent for e in data.examples if e.text.lower() == "same text"] == ["a"]
    assert any("both" in w for w in data.warnings)


def test_csv_with_intent_or_category_header() -> None:
    a = loads("text,intent\nhello,greeting\n\"where, is it\",order_status\n", "csv")
    b = loads("text,category\nhello,greeting\n\"where, is it\",order_status\n", "csv")
    assert a.examples == b.examples == [TrainingExample("hello", "greeting"),
                                        TrainingExample("where, is it", "order_status")]


def test_csv_labels_with_punctuation_are_kept() -> None:
    data = loads("text,category\nmy payment came back,reverted_card_payment?\nrefund,reverted_card_payment?\n", "csv")
    assert data.intents == ["reverted_card_payment?"]


def test_csv_without_label_column_is_rejected() -> None:
    with pytest.raises(DataFormatError, match="header"):
        loads("sentence,label_x\nhi,greeting\n", "csv")


def test_rasa_json_with_entities_and_extras() -> None:
    doc = {"rasa_nlu_data": {
        "common_examples": [
            {"text": "dim the lights in my bedroom", "intent": "iot_dim",
             "entities": [{"start": 21, "end": 28, "value": "bedroom", "entity": "place"}]},
            {"text": "lights off", "intent": "iot_off", "entities": []},
            {"text": "lights off please", "intent": "iot_off"},
        ],
        "entity_synonyms": [{"value": "bedroom", "synonyms": ["sleeping room"]}],
        "regex_features": [{"name": "zip", "pattern": "\\d{5}"}],
        "lookup_tables": [{"name": "place", "elements": ["bedroom", "kitchen"]}],
    }}
    data = load_rasa_json(json.dumps(doc))
    assert [e.intent for e in data.examples] == ["iot_dim", "iot_off", "iot_off"]
    assert data.synonyms == {"bedroom": ["sleeping room"]}
    assert data.regexes == {"zip": ["\\d{5}"]}
    assert data.lookups == {"place": ["bedroom", "kitchen"]}
    again = load_rasa_json(dump_rasa_json(data))
    assert again.examples == data.examples


def test_json_errors_are_clear() -> None:
    with pytest.raises(DataFormatError, match="line 1"):
        load_rasa_json("{not json")
    with pytest.raises(DataFormatError, match="rasa_nlu_data"):
        load_rasa_json("[]")
    with pytest.raises(DataFormatError, match="common_examples"):
        load_rasa_json('{"rasa_nlu_data": {"common_examples": [{"text": "x"}]}}')


def test_directory_and_files_by_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(YAML, encoding="utf-8")
    (tmp_path / "b.csv").write_text("text,intent\nbye now,goodbye\nsee you,goodbye\n", encoding="utf-8")
    (tmp_path / "ignored.txt").write_text("nothing", encoding="utf-8")
    data = load_training_data(tmp_path)
    assert set(data.intents) == {"greeting", "order_status", "goodbye"}
    assert data.responses["greeting"]["ru"] == "Здравствуйте!"
    with pytest.raises(DataFormatError, match="not found"):
        load_training_data(tmp_path / "missing.yml")
    (tmp_path / "x.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unsupported"):
        load_training_data(tmp_path / "x.txt")


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cp1251.yml"
    path.write_bytes("nlu:\n- intent: привет\n".encode("cp1251"))
    with pytest.raises(DataFormatError, match="UTF-8"):
        load_training_data(path)
