"""Property tests of the Rasa importer: whatever document arrives, it is imported data or a DataFormatError with
a reason, never another exception, and what it imports is text the database can store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlu.data import load_rasa_json, load_rasa_yaml, loads
from nlu.errors import DataFormatError
from nlu.protocol import TrainingData

# Bounded for CI: a few hundred documents per property, and a generous bound per example that only a hang or
# an expansion bomb gets near (the documents are a few KB).
BOUNDED = settings(max_examples=150, deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.too_slow],
                   derandomize=True)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
                    st.sampled_from(["greet", "utter_greet", "ru", "en", "- hi\n- hello", "\x00", "\ud800",
                                     "[ORD-1](order)", "/start", "a b", "x" * 300]))
KEYS = ["version", "nlu", "responses", "intent", "examples", "synonym", "regex", "lookup", "text", "metadata",
        "lang", "condition", "name", "value", "rasa_nlu_data", "common_examples", "entity_synonyms",
        "regex_features", "lookup_tables", "synonyms", "pattern", "elements", "utter_greet", "unknown"]
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children,
                                               max_size=6)),
    max_leaves=40,
)


def near_valid_yaml() -> st.SearchStrategy[dict[str, Any]]:
    """Rasa NLU/domain documents with the right keys and the wrong (or right) values."""
    examples = st.one_of(st.lists(scalars, max_size=5), st.text(max_size=80), scalars,
                         st.lists(st.text(max_size=20), max_size=5).map(lambda xs: "".join(f"- {x}\n" for x in xs)))
    item = st.one_of(
        st.fixed_dictionaries({"intent": scalars, "examples": examples}),
        st.fixed_dictionaries({"synonym": scalars, "examples": examples}),
        st.fixed_dictionaries({"regex": scalars, "examples": examples}),
        st.fixed_dictionaries({"lookup": scalars, "examples": examples}),
        documents,
    )
    variant = st.one_of(st.fixed_dictionaries({"text": scalars}, optional={"metadata": documents,
                                                                             "lang": scalars,
                                                                             "condition": documents}), documents)
    return st.fixed_dictionaries({}, optional={
        "version": scalars, "nlu": st.one_of(st.lists(item, max_size=5), documents),
        "responses": st.one_of(st.dictionaries(st.one_of(st.text(max_size=12), st.integers()),
                                               st.one_of(st.lists(variant, max_size=3), documents), max_size=3),
                               documents),
    })


def near_valid_json() -> st.SearchStrategy[dict[str, Any]]:
    example = st.one_of(st.fixed_dictionaries({"text": scalars, "intent": scalars}), documents)
    named = st.one_of(st.fixed_dictionaries({"name": scalars, "pattern": scalars}),
                      st.fixed_dictionaries({"value": scalars, "synonyms": documents}),
                      st.fixed_dictionaries({"name": scalars, "elements": documents}), documents)
    return st.fixed_dictionaries({"rasa_nlu_data": st.fixed_dictionaries({}, optional={
        "common_examples": st.one_of(st.lists(example, max_size=5), documents),
        "entity_synonyms": st.one_of(st.lists(named, max_size=3), documents),
        "regex_features": st.one_of(st.lists(named, max_size=3), documents),
        "lookup_tables": st.one_of(st.lists(named, max_size=3), documents),
    })})


def storable(data: TrainingData) -> None:
    """What an import hands to the database: UTF-8 encodable, without NUL."""
    texts = [e.text for e in data.examples] + [e.intent for e in data.examples]
    texts += [t for by_lang in data.responses.values() for t in by_lang.values()]
    texts += [lang for by_lang in data.responses.values() for lang in by_lang]
    texts += list(data.responses)
    for text in texts:
        assert "\x00" not in text
        text.encode("utf-8")
    assert all(len(lang) <= 8 for by_lang in data.responses.values() for lang in by_lang)


def import_or_reason(fmt: str, text: str) -> None:
    try:
        data = loads(text, fmt, source="upload")
    except DataFormatError as exc:
        reason = str(exc)
    else:
        storable(data)
        return
    assert reason.strip()


def dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True)


@BOUNDED
@given(st.text(max_size=500))
def test_any_text_as_yaml_json_or_csv(text: str) -> None:
    for fmt in ("yaml", "json", "csv"):
        import_or_reason(fmt, text)


@BOUNDED
@given(st.binary(max_size=500), st.sampled_from(["utf-8", "latin-1", "utf-16", "cp1251"]),
       st.sampled_from(["", "\ufeff"]))
def test_any_bytes_decoded_as_an_upload_would_be(raw: bytes, codec: str, bom: str) -> None:
    text = bom + raw.decode(codec, errors="surrogateescape" if codec == "utf-8" else "replace")
    for fmt in ("yaml", "json"):
        import_or_reason(fmt, text)


@BOUNDED
@given(documents)
def test_arbitrary_documents(doc: Any) -> None:
    import_or_reason("yaml", dump_yaml(doc))
    import_or_reason("json", json.dumps(doc))


@BOUNDED
@given(near_valid_yaml())
def test_near_valid_rasa_yaml(doc: dict[str, Any]) -> None:
    import_or_reason("yaml", dump_yaml(doc))


@BOUNDED
@given(near_valid_json())
def test_near_valid_rasa_json(doc: dict[str, Any]) -> None:
    import_or_reason("json", json.dumps(doc))


@settings(max_examples=60, deadline=timedelta(seconds=30), derandomize=True)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["[", "{a: ", "- "]),
       where=st.sampled_from(["nlu", "responses", "examples"]))
def test_deep_nesting_is_refused_or_read(depth: int, opener: str, where: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        body = "\n" + "".join(" " * i + "-\n" for i in range(depth))
    else:
        body = opener * depth + "x" + closer * depth
    text = {"nlu": f"nlu: {body}\n", "responses": f"responses: {body}\n",
            "examples": f"nlu:\n- intent: greet\n  examples: {body}\n"}[where]
    import_or_reason("yaml", text)
    import_or_reason("json", "[" * depth + "]" * depth)


@settings(max_examples=10, deadline=timedelta(seconds=30), derandomize=True)
@given(width=st.integers(2, 12), levels=st.integers(1, 12), target=st.sampled_from(
    ["nlu: *top\n", "nlu: [{intent: greet, examples: *top}]\n", "nlu: [{synonym: *top, examples: [x]}]\n",
     "responses: {utter_greet: *top}\n", "responses: {utter_greet: [{text: hi, condition: *top}]}\n"]))
def test_alias_bombs_are_refused_or_small(width: int, levels: int, target: str) -> None:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    text = "\n".join(lines).replace(f"&l{levels} ", "&top ") + "\n" + target
    try:
        data = load_rasa_yaml(text)
    except DataFormatError as exc:
        reason = str(exc)
    else:
        storable(data)
        return
    assert reason.strip()


def test_a_bom_and_a_json_bom_are_read() -> None:
    assert load_rasa_yaml("\ufeffnlu:\n- intent: greet\n  examples: [hi, hello]\n").examples
    doc = {"rasa_nlu_data": {"common_examples": [{"text": "hi", "intent": "greet"}]}}
    assert load_rasa_json("\ufeff" + json.dumps(doc)).examples
