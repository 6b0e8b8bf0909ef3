"""Training data in Rasa's formats (YAML and JSON) and plain CSV: load, validate, merge, dump.

Responses carry their language in the `metadata` of each variant (Rasa's domain schema accepts any metadata
there, while unknown keys on a variant fail its validation):

    responses:
      utter_greeting:
      - text: "Здравствуйте! Чем могу помочь?"
        metadata: {lang: ru}
      - text: "Hello! How can I help?"
        metadata: {lang: en}

On import a top-level `lang` key or a Rasa `condition` on a `language` slot are understood too.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from nlu.errors import DataFormatError
from nlu.protocol import TrainingData, TrainingExample

RASA_YAML_VERSION = "3.1"
RESPONSE_PREFIX = "utter_"
DEFAULT_DATA_DIR = Path(__file__).parent / "data" / "default"
# Rasa is lenient about names (banking77 has "reverted_card_payment?"); what breaks its formats is whitespace,
# a leading "/" (Rasa's intent-trigger syntax) and brackets (its entity markup).
INTENT_NAME = re.compile(r"^[^\s/\[\](){}][^\s\[\](){}]*$")
_ANNOTATION = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")
_CSV_LABEL_COLUMNS = ("intent", "category", "label")
SUPPORTED_SUFFIXES = (".yml", ".yaml", ".json", ".csv")
# Bounds on a document's shape, checked while it is read: Rasa data is a few levels deep, and its size is in
# its strings, not in its number of values. Past them a document is refused with the reason: a 100,000-deep
# list crashed the YAML composer (RecursionError, a 500 for the API), and a few lines of YAML aliases
# ("billion laughs") expand to more values than any memory holds as soon as something walks them.
MAX_DEPTH = 32
MAX_VALUES = 1_000_000
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}([-_][a-z0-9]{2,4})?$", re.IGNORECASE)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting bound: its composer recurses once per level."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _check_shape(doc: Any, *, source: str) -> None:
    """Refuse a document deeper than MAX_DEPTH or with more than MAX_VALUES values once aliases are expanded.

    Walks the document as its readers will (a value reached twice through aliases counts twice), stopping as
    soon as a bound is passed, so the walk itself is bounded.
    """
    budget = MAX_VALUES
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise DataFormatError(f"the document has more than {MAX_VALUES} values once its aliases are expanded",
                                  source=source)
        if depth > MAX_DEPTH:
            raise DataFormatError(f"the document is nested deeper than {MAX_DEPTH} levels", source=source)
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for pair in value.items() for v in pair)
        elif isinstance(value, list | tuple | set):
            stack.extend((v, depth + 1) for v in value)


def _check_text(text: str, *, source: str, what: str) -> str:
    """A string the database can store: no NUL (PostgreSQL refuses it) and no lone surrogate (not UTF-8)."""
    if "\x00" in text or _LONE_SURROGATE.search(text):
        raise DataFormatError(f"{what}: contains a NUL character or a lone surrogate ({text[:40]!r})", source=source)
    return text


def strip_annotations(text: str) -> str:
    """Turn Rasa's inline entity markup `[ORD-1](order_number)` back into plain text."""
    return _ANNOTATION.sub(r"\1", text)


def _clean_text(text: str) -> str:
    return " ".join(strip_annotations(text).split())


def _examples_block(value: Any, *, source: str, what: str) -> list[str]:
    if isinstance(value, list):
        if not all(isinstance(v, str | int | float) for v in value):
            raise DataFormatError(f"{what}: examples must be strings", source=source)
        items = [str(v) for v in value]
    elif isinstance(value, str):
        items = []
        for raw in value.splitlines():
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("-"):
                raise DataFormatError(f"{what}: example lines must start with '- ', got {line[:60]!r}",
                                      source=source)
            items.append(line[1:].strip())
    else:
        raise DataFormatError(f"{what}: 'examples' must be a '|' block of '- ' lines", source=source)
    return [_check_text(t, source=source, what=what) for t in (_clean_text(i) for i in items) if t]


def _check_name(name: Any, *, source: str, kind: str) -> str:
    if not isinstance(name, str) or not INTENT_NAME.match(name.strip()) or len(name) > 200:
        shown = repr(name)[:80] if isinstance(name, str | int | float | bool | None) else type(name).__name__
        raise DataFormatError(f"invalid {kind} name {shown} (no spaces, brackets or leading '/')", source=source)
    return _check_text(name.strip(), source=source, what=f"{kind} name")


def load_rasa_yaml(text: str, *, source: str = "<yaml>") -> TrainingData:
    """Parse Rasa YAML (NLU items and, optionally, `responses:` of a domain)."""
    try:
        doc = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader with a depth bound
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise DataFormatError(f"YAML syntax error: {exc.problem or exc}", source=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise DataFormatError(f"YAML syntax error: {exc}", source=source) from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise DataFormatError(f"YAML value error: {exc}", source=source) from exc
    except RecursionError as exc:  # a nesting the composer bound does not see (the scanner's flow levels)
        raise DataFormatError("the document is nested too deep", source=source) from exc
    _check_shape(doc, source=source)
    if doc is None:
        return TrainingData()
    if not isinstance(doc, dict):
        raise DataFormatError("expected a mapping with 'nlu:' and/or 'responses:' at the top level",
                              source=source)
    known = {"version", "nlu", "responses", "intents", "entities", "slots", "forms", "actions",
             "session_config", "rules", "stories", "e2e_actions", "language", "pipeline", "policies",
             "assistant_id", "recipe"}
    unknown = sorted(str(k) for k in doc if k not in known)
    if unknown:
        raise DataFormatError(f"unknown top-level keys: {', '.join(unknown)}", source=source)
    data = TrainingData()
    nlu = doc.get("nlu") or []
    if not isinstance(nlu, list):
        raise DataFormatError("'nlu' must be a list of items", source=source)
    for index, item in enumerate(nlu):
        what = f"nlu item {index + 1}"
        if not isinstance(item, dict):
            raise DataFormatError(f"{what} must be a mapping", source=source)
        if "intent" in item:
            intent = _check_name(item["intent"], source=source, kind="intent")
            for t in _examples_block(item.get("examples"), source=source, what=f"intent {intent}"):
                data.examples.append(TrainingExample(t, intent))
        elif "synonym" in item:
            if not isinstance(item["synonym"], str | int | float):
                raise DataFormatError(f"{what}: a synonym's name must be a string", source=source)
            name = _check_text(str(item["synonym"]).strip(), source=source, what=what)
            data.synonyms.setdefault(name, []).extend(
                _examples_block(item.get("examples"), source=source, what=f"synonym {name}"))
        elif "regex" in item:
            name = _check_name(item["regex"], source=source, kind="regex")
            patterns = _examples_block(item.get("examples"), source=source, what=f"regex {name}")
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except (re.error, RecursionError, OverflowError) as exc:
                    raise DataFormatError(f"regex {name}: invalid pattern {pattern!r}: {exc}",
                                          source=source) from exc
            data.regexes.setdefault(name, []).extend(patterns)
        elif "lookup" in item:
            name = _check_name(item["lookup"], source=source, kind="lookup")
            data.lookups.setdefault(name, []).extend(
                _examples_block(item.get("examples"), source=source, what=f"lookup {name}"))
        else:
            raise DataFormatError(f"{what}: expected one of intent, synonym, regex, lookup; got "
                                  f"{sorted(map(str, item))}", source=source)
    responses = doc.get("responses") or {}
    if not isinstance(responses, dict):
        raise DataFormatError("'responses' must be a mapping of utter_<intent> to variants", source=source)
    for key, variants in responses.items():
        if not isinstance(variants, list):
            raise DataFormatError(f"response {key}: expected a list of variants", source=source)
        if not isinstance(key, str):
            raise DataFormatError(f"response {str(key)[:40]!r}: the name must be a string", source=source)
        intent = _check_text(key.removeprefix(RESPONSE_PREFIX), source=source, what=f"response {key[:40]}")
        for variant in variants:
            if not isinstance(variant, dict) or not isinstance(variant.get("text"), str):
                raise DataFormatError(f"response {key}: each variant needs a 'text'", source=source)
            lang = _variant_language(variant)
            if not LANGUAGE_CODE.match(lang):
                raise DataFormatError(f"response {key}: {lang[:40]!r} is not a language code (ru, en, ...)",
                                      source=source)
            text = _check_text(variant["text"].strip(), source=source, what=f"response {key}")
            data.responses.setdefault(intent, {}).setdefault(lang.lower(), text)
    return validate(data)


def _variant_language(variant: dict[str, Any]) -> str:
    metadata = variant.get("metadata")
    if isinstance(metadata, dict) and metadata.get("lang"):
        return str(metadata["lang"])[:40]
    if variant.get("lang"):
        return str(variant["lang"])[:40]
    conditions = variant.get("condition") or []
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("name") in ("language", "lang"):
            return str(condition.get("value"))[:40]
    return "en"


def load_rasa_json(text: str, *, source: str = "<json>") -> TrainingData:
    """Parse Rasa's legacy JSON (`rasa_nlu_data` with common_examples, synonyms, regexes, lookups)."""
    try:
        doc = json.loads(text.removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"JSON syntax error: {exc.msg}", source=source, line=exc.lineno) from exc
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise DataFormatError(f"JSON value error: {exc}", source=source) from exc
    except RecursionError as exc:  # the decoder recurses per level
        raise DataFormatError("the document is nested too deep", source=source) from exc
    _check_shape(doc, source=source)
    root = doc.get("rasa_nlu_data") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise DataFormatError("expected an object with 'rasa_nlu_data'", source=source)
    data = TrainingData()
    for index, ex in enumerate(_json_list(root, "common_examples", source)):
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str) or "intent" not in ex:
            raise DataFormatError(f"common_examples[{index}] needs 'text' and 'intent'", source=source)
        intent = _check_name(ex["intent"], source=source, kind="intent")
        cleaned = _check_text(_clean_text(ex["text"]), source=source, what=f"common_examples[{index}]")
        if cleaned:
            data.examples.append(TrainingExample(cleaned, intent))
    for index, syn in enumerate(_json_list(root, "entity_synonyms", source)):
        what = f"entity_synonyms[{index}]"
        value, synonyms = _json_fields(syn, ("value", "synonyms"), source=source, what=what)
        if not isinstance(synonyms, list) or not all(isinstance(s, str) for s in synonyms):
            raise DataFormatError(f"{what}: 'synonyms' must be a list of strings", source=source)
        data.synonyms.setdefault(value, []).extend(_check_text(s, source=source, what=what) for s in synonyms)
    for index, rx in enumerate(_json_list(root, "regex_features", source)):
        what = f"regex_features[{index}]"
        name, pattern = _json_fields(rx, ("name", "pattern"), source=source, what=what)
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise DataFormatError(f"{what}: invalid pattern {pattern[:60]!r}: {exc}", source=source) from exc
        data.regexes.setdefault(name, []).append(pattern)
    for index, lk in enumerate(_json_list(root, "lookup_tables", source)):
        what = f"lookup_tables[{index}]"
        name, elements = _json_fields(lk, ("name", "elements"), source=source, what=what)
        if not isinstance(elements, list) or not all(isinstance(e, str) for e in elements):
            raise DataFormatError(f"{what}: 'elements' must be a list of strings", source=source)
        data.lookups.setdefault(name, []).extend(_check_text(e, source=source, what=what) for e in elements)
    return validate(data)


def _json_list(root: dict[str, Any], key: str, source: str) -> list[Any]:
    value = root.get(key) or []
    if not isinstance(value, list):
        raise DataFormatError(f"'{key}' must be a list", source=source)
    return value


def _json_fields(item: Any, names: tuple[str, str], *, source: str, what: str) -> tuple[str, Any]:
    """The first field (a string) and the second (any value, checked by the caller) of a JSON object."""
    if not isinstance(item, dict) or not isinstance(item.get(names[0]), str) or names[1] not in item:
        raise DataFormatError(f"{what} needs '{names[0]}' (a string) and '{names[1]}'", source=source)
    value = item[names[1]]
    if names[1] == "pattern" and not isinstance(value, str):
        raise DataFormatError(f"{what}: 'pattern' must be a string", source=source)
    return _check_text(item[names[0]], source=source, what=what), value


def load_csv(text: str, *, source: str = "<csv>") -> TrainingData:
    """Parse CSV with a header `text,intent` (or `text,category` / `text,label`)."""
    try:
        return _load_csv(text, source=source)
    except csv.Error as exc:  # a NUL, a stray carriage return, a field past the csv module's size limit
        raise DataFormatError(f"CSV syntax error: {exc}", source=source) from exc


def _load_csv(text: str, *, source: str) -> TrainingData:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    label = next((c for c in _CSV_LABEL_COLUMNS if c in fields), None)
    if "text" not in fields or label is None:
        raise DataFormatError(f"CSV header must have 'text' and one of {', '.join(_CSV_LABEL_COLUMNS)}; "
                              f"got {fields}", source=source, line=1)
    reader.fieldnames = fields
    data = TrainingData()
    for row in reader:
        raw_text, raw_label = row.get("text"), row.get(label)
        if raw_text is None or raw_label is None:
            raise DataFormatError("row has too few columns", source=source, line=reader.line_num)
        intent = _check_name(raw_label, source=f"{source}:{reader.line_num}", kind="intent")
        cleaned = _check_text(_clean_text(raw_text), source=source, what=f"line {reader.line_num}")
        if cleaned:
            data.examples.append(TrainingExample(cleaned, intent))
    return validate(data)


def validate(data: TrainingData) -> TrainingData:
    """Drop duplicates and conflicting repeats, and record what looks wrong as warnings."""
    seen: dict[str, str] = {}
    kept: list[TrainingExample] = []
    duplicates = 0
    for ex in data.examples:
        key = ex.text.casefold()
        if key in seen:
            if seen[key] != ex.intent:
                data.warnings.append(f"example {ex.text!r} is under both {seen[key]!r} and {ex.intent!r}; "
                                     f"kept {seen[key]!r}")
            else:
                duplicates += 1
            continue
        seen[key] = ex.intent
        kept.append(ex)
    data.examples = kept
    if duplicates:
        data.warnings.append(f"{duplicates} duplicate example(s) removed")
    counts: dict[str, int] = {}
    for ex in kept:
        counts[ex.intent] = counts.get(ex.intent, 0) + 1
    for intent, n in sorted(counts.items()):
        if n < 2:
            data.warnings.append(f"intent {intent!r} has only {n} example; add more for it to be learned")
    for name in list(data.synonyms):
        data.synonyms[name] = list(dict.fromkeys(data.synonyms[name]))
    for name in list(data.lookups):
        data.lookups[name] = list(dict.fromkeys(data.lookups[name]))
    for name in list(data.regexes):
        data.regexes[name] = list(dict.fromkeys(data.regexes[name]))
    for intent in sorted(data.responses):
        if counts and intent not in counts:
            data.warnings.append(f"response utter_{intent} belongs to no intent with examples")
    return data


def merge(parts: Iterable[TrainingData]) -> TrainingData:
    """Combine several data sets (e.g. the files of one directory) into one."""
    out = TrainingData()
    for part in parts:
        out.examples.extend(part.examples)
        for name, values in part.synonyms.items():
            out.synonyms.setdefault(name, []).extend(values)
        for name, values in part.regexes.items():
            out.regexes.setdefault(name, []).extend(values)
        for name, values in part.lookups.items():
            out.lookups.setdefault(name, []).extend(values)
        for intent, by_lang in part.responses.items():
            for lang, answer in by_lang.items():
                out.responses.setdefault(intent, {}).setdefault(lang, answer)
        out.warnings.extend(w for w in part.warnings if "only" not in w and "duplicate" not in w)
    merged = validate(out)
    merged.warnings = list(dict.fromkeys(merged.warnings))
    return merged


def loads(text: str, fmt: str, *, source: str = "<data>") -> TrainingData:
    """Parse text in a named format: yaml, json or csv."""
    fmt = fmt.lower().lstrip(".")
    if fmt in ("yml", "yaml"):
        return load_rasa_yaml(text, source=source)
    if fmt == "json":
        return load_rasa_json(text, source=source)
    if fmt == "csv":
        return load_csv(text, source=source)
    raise DataFormatError(f"unsupported format {fmt!r}; use yaml, json or csv", source=source)


def load_training_data(path: Path | str | None = None) -> TrainingData:
    """Load a file (by its suffix) or every supported file of a directory; None loads the shipped data."""
    path = Path(path) if path is not None else DEFAULT_DATA_DIR
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES)
        if not files:
            raise DataFormatError("no .yml/.yaml/.json/.csv files in directory", source=str(path))
        return merge(_load_file(p) for p in files)
    return _load_file(path)


def _load_file(path: Path) -> TrainingData:
    if not path.exists():
        raise DataFormatError("file not found", source=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text: {exc.reason}", source=str(path)) from exc
    return loads(text, path.suffix, source=str(path))


def dump_rasa_yaml(data: TrainingData, *, include_responses: bool = True) -> str:
    """Write Rasa 3 YAML: `nlu:` with `examples: |` blocks, synonyms, regexes, lookups, then responses."""
    out = io.StringIO()
    out.write(f'version: "{RASA_YAML_VERSION}"\n')
    by_intent: dict[str, list[str]] = {}
    for ex in data.examples:
        by_intent.setdefault(ex.intent, []).append(ex.text)
    sections: list[tuple[str, str, list[str]]] = [("intent", i, t) for i, t in by_intent.items()]
    sections += [("synonym", n, v) for n, v in data.synonyms.items()]
    sections += [("regex", n, v) for n, v in data.regexes.items()]
    sections += [("lookup", n, v) for n, v in data.lookups.items()]
    if sections:
        out.write("\nnlu:\n")
    for kind, name, items in sections:
        out.write(f"- {kind}: {_yaml_scalar(name)}\n  examples: |\n")
        for item in items:
            out.write(f"    - {' '.join(item.split())}\n")
    if include_responses and data.responses:
        responses = {
            f"{RESPONSE_PREFIX}{intent}": [
                {"text": text, "metadata": {"lang": lang}} for lang, text in sorted(by_lang.items())
            ]
            for intent, by_lang in data.responses.items()
        }
        out.write("\n")
        out.write(yaml.safe_dump({"responses": responses}, allow_unicode=True, sort_keys=False, width=100))
    return out.getvalue()


def dump_rasa_json(data: TrainingData) -> str:
    """Write Rasa's legacy JSON format (responses are not part of it)."""
    doc = {
        "rasa_nlu_data": {
            "common_examples": [{"text": e.text, "intent": e.intent, "entities": []} for e in data.examples],
            "entity_synonyms": [{"value": k, "synonyms": v} for k, v in data.synonyms.items()],
            "regex_features": [{"name": k, "pattern": p} for k, ps in data.regexes.items() for p in ps],
            "lookup_tables": [{"name": k, "elements": v} for k, v in data.lookups.items()],
        }
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _yaml_scalar(value: str) -> str:
    dumped = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()


def split_by_language(data: TrainingData) -> dict[str, list[TrainingExample]]:
    """Group examples by detected language (used to check the shipped data per language)."""
    from nlu.text import detect_language

    groups: dict[str, list[TrainingExample]] = {}
    for ex in data.examples:
        groups.setdefault(detect_language(ex.text), []).append(ex)
    return groups
