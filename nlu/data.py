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
from nlu.protocol import ExampleEntity, TrainingData, TrainingExample

RASA_YAML_VERSION = "3.1"
RESPONSE_PREFIX = "utter_"
DEFAULT_DATA_DIR = Path(__file__).parent / "data" / "default"
# Rasa is lenient about names (banking77 has "reverted_card_payment?"); what breaks its formats is whitespace,
# a leading "/" (Rasa's intent-trigger syntax) and brackets (its entity markup).
INTENT_NAME = re.compile(r"^[^\s/\[\](){}][^\s\[\](){}]*$")
_ANNOTATION = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")
_CSV_LABEL_COLUMNS = ("intent", "category", "label")
SUPPORTED_SUFFIXES = (".yml", ".yaml", ".json", ".csv", ".md")
# Rasa's entity markup: [text](entity), [text](entity:synonym), [text]{"entity": ..., "role": ...},
# [text][{"entity": ...}, {"entity": ...}] (several entities on one span).
_MARKUP = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<short>[^)]*)\)|(?P<dict>\{[^}]*\})|\[(?P<list>\{[^\]]*\})\])")
ENTITY_NAME = re.compile(r"^[^\s\[\](){}:,\"]{1,100}$")
_MD_INLINE_COMMENT = re.compile(r"<!--.*?-->")
_MD_SECTION = re.compile(r"^##\s*(intent|synonym|regex|lookup)\s*:\s*(.+?)\s*$")
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


class _LineDict(dict[Any, Any]):
    """A YAML mapping that knows its line and the line of each key's value (1-based), for error messages."""

    line: int = 0
    key_lines: dict[Any, int]


class _LineList(list[Any]):
    """A YAML sequence that knows the line of each item (1-based)."""

    lines: list[int]


def _construct_map(loader: _BoundedLoader, node: yaml.MappingNode) -> Iterable[_LineDict]:
    data = _LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    data.update(loader.construct_mapping(node))
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            data.key_lines[key_node.value] = value_node.start_mark.line + 1


def _construct_seq(loader: _BoundedLoader, node: yaml.SequenceNode) -> Iterable[_LineList]:
    data = _LineList()
    data.lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_BoundedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_BoundedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _line_of(container: Any, key: Any) -> int | None:
    if isinstance(container, _LineDict):
        return container.key_lines.get(key, container.line)
    if isinstance(container, _LineList) and isinstance(key, int) and key < len(container.lines):
        return container.lines[key]
    return None


def strip_annotations(text: str) -> str:
    """Turn Rasa's inline entity markup `[ORD-1](order_number)` back into plain text."""
    return _MARKUP.sub(lambda m: m.group("text"), text)


def _clean_text(text: str) -> str:
    return " ".join(strip_annotations(text).split())


def _entity_specs(match: re.Match[str], *, source: str, line: int | None) -> list[dict[str, Any]]:
    if match.group("short") is not None:
        name, _, value = match.group("short").partition(":")
        specs: list[Any] = [{"entity": name.strip(), **({"value": value.strip()} if value.strip() else {})}]
    else:
        raw = match.group("dict") or f"[{match.group('list')}]"
        try:
            loaded = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DataFormatError(f"entity annotation {match.group(0)[:80]!r} is not valid JSON", source=source,
                                  line=line) from exc
        specs = loaded if isinstance(loaded, list) else [loaded]
    for spec in specs:
        if (not isinstance(spec, dict) or not isinstance(spec.get("entity"), str)
                or not ENTITY_NAME.match(spec["entity"])):
            raise DataFormatError(f"entity annotation {match.group(0)[:80]!r} needs an entity name (no spaces or "
                                  f"brackets)", source=source, line=line)
        unknown = sorted(set(spec) - {"entity", "value", "role", "group"})
        if unknown:
            raise DataFormatError(f"entity annotation {match.group(0)[:80]!r}: unknown keys {unknown}",
                                  source=source, line=line)
        for key in ("value", "role", "group"):
            if key in spec and not isinstance(spec[key], str | int | float):
                raise DataFormatError(f"entity annotation {match.group(0)[:80]!r}: {key} must be a string",
                                      source=source, line=line)
    return specs


def parse_markup(raw: str, *, source: str = "<data>", line: int | None = None
                 ) -> tuple[str, tuple[ExampleEntity, ...]]:
    """An example in Rasa's markup -> (plain text with whitespace collapsed, its entity annotations)."""
    raw = " ".join(raw.split())
    parts: list[str] = []
    entities: list[ExampleEntity] = []
    pos = length = 0
    for match in _MARKUP.finditer(raw):
        parts.append(raw[pos:match.start()])
        length += match.start() - pos
        shown = " ".join(match.group("text").split())
        specs = _entity_specs(match, source=source, line=line)
        start, end = length, length + len(shown)
        parts.append(shown)
        length = end
        pos = match.end()
        for spec in specs:
            value = str(spec["value"]) if spec.get("value") is not None else None
            entities.append(ExampleEntity(
                start=start, end=end, entity=spec["entity"], value=None if value == shown else value,
                role=str(spec["role"]) if spec.get("role") is not None else None,
                group=str(spec["group"]) if spec.get("group") is not None else None))
    parts.append(raw[pos:])
    text = "".join(parts)
    # Collapsing spaces around the markup may leave an edge space: trim it and shift the spans.
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    if lead:
        entities = [ExampleEntity(e.start - lead, e.end - lead, e.entity, e.value, e.role, e.group)
                    for e in entities]
    return text, tuple(entities)


def render_markup(text: str, entities: Iterable[ExampleEntity]) -> str:
    """Plain text and annotations -> Rasa's markup (the inverse of parse_markup)."""
    spans: dict[tuple[int, int], list[ExampleEntity]] = {}
    for entity in entities:
        spans.setdefault((entity.start, entity.end), []).append(entity)
    out: list[str] = []
    pos = 0
    for (start, end), group in sorted(spans.items()):
        if start < pos or end > len(text) or start >= end:
            continue  # overlapping spans have no markup (Rasa's neither)
        out.append(text[pos:start])
        shown = text[start:end]
        if len(group) == 1 and group[0].role is None and group[0].group is None and group[0].value is None:
            out.append(f"[{shown}]({group[0].entity})")
        else:
            dicts = [{k: v for k, v in (("entity", e.entity), ("value", e.value), ("role", e.role),
                                        ("group", e.group)) if v is not None} for e in group]
            body = json.dumps(dicts[0] if len(dicts) == 1 else dicts, ensure_ascii=False)
            out.append(f"[{shown}]{body}")
        pos = end
    out.append(text[pos:])
    return "".join(out)


_RawExample = tuple[str, int | None, dict[str, Any] | None]


def _examples_block(value: Any, *, source: str, what: str, line: int | None = None) -> list[_RawExample]:
    """The `examples:` of an item: a `|` block of `- ` lines, a list of strings, or Rasa's list form
    (`- text: ...` with `metadata:`); returns (raw text with markup, line, metadata)."""
    items: list[_RawExample] = []
    if isinstance(value, list):
        for index, item in enumerate(value):
            item_line = _line_of(value, index) or line
            if isinstance(item, dict):
                if not isinstance(item.get("text"), str | int | float):
                    raise DataFormatError(f"{what}: an example of the list form needs a 'text'", source=source,
                                          line=item_line)
                unknown = sorted(str(k) for k in item if k not in ("text", "metadata"))
                if unknown:
                    raise DataFormatError(f"{what}: unknown keys of an example: {', '.join(unknown)}",
                                          source=source, line=item_line)
                metadata = item.get("metadata")
                if metadata is not None and not isinstance(metadata, dict):
                    raise DataFormatError(f"{what}: an example's metadata must be a mapping", source=source,
                                          line=item_line)
                items.append((str(item["text"]), item_line, _plain(metadata) if metadata else None))
            elif isinstance(item, str | int | float):
                items.append((str(item), item_line, None))
            else:
                raise DataFormatError(f"{what}: examples must be strings or '- text:' items", source=source,
                                      line=item_line)
    elif isinstance(value, str):
        for offset, raw in enumerate(value.splitlines()):
            text = raw.strip()
            raw_line = line + 1 + offset if line is not None else None
            if not text:
                continue
            if not text.startswith("-"):
                raise DataFormatError(f"{what}: example lines must start with '- ', got {text[:60]!r}",
                                      source=source, line=raw_line)
            items.append((text[1:].strip(), raw_line, None))
    else:
        raise DataFormatError(f"{what}: 'examples' must be a '|' block of '- ' lines or a list", source=source,
                              line=line)
    for text, item_line, _ in items:
        _check_text(text, source=f"{source}, line {item_line}" if item_line else source, what=what)
    return items


def _plain(value: Any) -> Any:
    """A YAML value without the line-keeping containers (what JSON columns and dumps take)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _plain_values(items: list[_RawExample]) -> list[str]:
    """Examples of a synonym, regex or lookup: text only (markup stripped, whitespace collapsed)."""
    return [t for t in (" ".join(raw.split()) for raw, _, _ in items) if t]


def _origin(source: str, line: int | None) -> str:
    return f"{source}, line {line}" if line is not None else source


def _check_name(name: Any, *, source: str, kind: str, line: int | None = None) -> str:
    if isinstance(name, str):
        stripped = name.strip()
        retrieval_ok = "/" not in stripped or (kind == "intent" and stripped.count("/") == 1
                                                 and not stripped.endswith("/"))
        if INTENT_NAME.match(stripped) and len(name) <= 200 and retrieval_ok:
            return _check_text(stripped, source=_origin(source, line), what=f"{kind} name")
    shown = repr(name)[:80] if isinstance(name, str | int | float | bool | None) else type(name).__name__
    hint = " (a retrieval intent is group/name)" if kind == "intent" else ""
    raise DataFormatError(f"invalid {kind} name {shown} (no spaces, brackets or leading '/'){hint}", source=source,
                          line=line)


def _add_examples(data: TrainingData, intent: str, items: list[_RawExample], *, source: str) -> None:
    for raw, line, metadata in items:
        text, entities = parse_markup(raw, source=source, line=line)
        if text:
            data.examples.append(TrainingExample(text, intent, entities, metadata, _origin(source, line)))


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
        raise DataFormatError("'nlu' must be a list of items", source=source, line=_line_of(doc, "nlu"))
    for index, item in enumerate(nlu):
        what = f"nlu item {index + 1}"
        line = _line_of(nlu, index)
        if not isinstance(item, dict):
            raise DataFormatError(f"{what} must be a mapping", source=source, line=line)
        examples_line = _line_of(item, "examples")
        if "intent" in item:
            intent = _check_name(item["intent"], source=source, kind="intent", line=line)
            metadata = item.get("metadata")
            if metadata is not None:
                if not isinstance(metadata, dict):
                    raise DataFormatError(f"intent {intent}: metadata must be a mapping", source=source, line=line)
                data.intent_metadata[intent] = _plain(metadata)
            _add_examples(data, intent, _examples_block(item.get("examples"), source=source,
                                                        what=f"intent {intent}", line=examples_line),
                          source=source)
        elif "synonym" in item:
            if not isinstance(item["synonym"], str | int | float):
                raise DataFormatError(f"{what}: a synonym's name must be a string", source=source, line=line)
            name = _check_text(str(item["synonym"]).strip(), source=_origin(source, line), what=what)
            data.synonyms.setdefault(name, []).extend(_plain_values(
                _examples_block(item.get("examples"), source=source, what=f"synonym {name}", line=examples_line)))
        elif "regex" in item:
            name = _check_name(item["regex"], source=source, kind="regex", line=line)
            for raw, raw_line, _ in _examples_block(item.get("examples"), source=source, what=f"regex {name}",
                                                    line=examples_line):
                data.regexes.setdefault(name, []).append(_check_pattern(raw.strip(), name, source, raw_line))
        elif "lookup" in item:
            name = _check_name(item["lookup"], source=source, kind="lookup", line=line)
            data.lookups.setdefault(name, []).extend(_plain_values(
                _examples_block(item.get("examples"), source=source, what=f"lookup {name}", line=examples_line)))
        else:
            raise DataFormatError(f"{what}: expected one of intent, synonym, regex, lookup; got "
                                  f"{sorted(map(str, item))}", source=source, line=line)
    responses = doc.get("responses") or {}
    if not isinstance(responses, dict):
        raise DataFormatError("'responses' must be a mapping of utter_<intent> to variants", source=source,
                              line=_line_of(doc, "responses"))
    for key, variants in responses.items():
        line = _line_of(responses, key)
        if not isinstance(key, str):
            raise DataFormatError(f"response {str(key)[:40]!r}: the name must be a string", source=source, line=line)
        if not isinstance(variants, list):
            raise DataFormatError(f"response {key}: expected a list of variants", source=source, line=line)
        intent = _check_text(key.removeprefix(RESPONSE_PREFIX), source=_origin(source, line),
                             what=f"response {key[:40]}")
        for variant in variants:
            if not isinstance(variant, dict) or not isinstance(variant.get("text"), str):
                raise DataFormatError(f"response {key}: each variant needs a 'text'", source=source, line=line)
            lang = _variant_language(variant)
            if not LANGUAGE_CODE.match(lang):
                raise DataFormatError(f"response {key}: {lang[:40]!r} is not a language code (ru, en, ...)",
                                      source=source, line=line)
            text = _check_text(variant["text"].strip(), source=_origin(source, line), what=f"response {key}")
            data.add_response(intent, lang.lower(), text)
    return validate(data)


def _check_pattern(pattern: str, name: str, source: str, line: int | None) -> str:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise DataFormatError(f"regex {name}: invalid pattern {pattern[:60]!r}: {exc}", source=source,
                              line=line) from exc
    return pattern


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
    annotations = 0
    for index, ex in enumerate(_json_list(root, "common_examples", source)):
        what = f"common_examples[{index}]"
        if not isinstance(ex, dict) or not isinstance(ex.get("text"), str) or "intent" not in ex:
            raise DataFormatError(f"{what} needs 'text' and 'intent'", source=source)
        intent = _check_name(ex["intent"], source=source, kind="intent")
        raw = _check_text(ex["text"], source=source, what=what)
        entities = _json_entities(ex.get("entities") or [], raw, source=source, what=what)
        annotations += len(entities)
        metadata = ex.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise DataFormatError(f"{what}: metadata must be an object", source=source)
        text, parsed = parse_markup(render_markup(raw, entities), source=f"{source}, {what}")
        if text:
            data.examples.append(TrainingExample(text, intent, parsed, metadata or None, f"{source}, {what}"))
    data.conversions.append(f"{source}: legacy Rasa JSON read ({len(data.examples)} examples, {annotations} "
                            f"entity annotations)")
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


def _json_entities(raw: Any, text: str, *, source: str, what: str) -> list[ExampleEntity]:
    if not isinstance(raw, list):
        raise DataFormatError(f"{what}: 'entities' must be a list", source=source)
    out: list[ExampleEntity] = []
    for k, e in enumerate(raw):
        where = f"{what}.entities[{k}]"
        if (not isinstance(e, dict) or not isinstance(e.get("start"), int) or not isinstance(e.get("end"), int)
                or not isinstance(e.get("entity"), str) or not ENTITY_NAME.match(e["entity"])):
            raise DataFormatError(f"{where} needs integer 'start' and 'end' and an 'entity' name", source=source)
        if not 0 <= e["start"] < e["end"] <= len(text):
            raise DataFormatError(f"{where}: span {e['start']}-{e['end']} is outside the text", source=source)
        value = e.get("value")
        extra = {key: str(e[key]) for key in ("role", "group") if e.get(key) is not None}
        out.append(ExampleEntity(e["start"], e["end"], e["entity"],
                                 None if value is None or str(value) == text[e["start"]:e["end"]] else str(value),
                                 **extra))
    return out


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
    """Drop duplicates and conflicting repeats, and list each one (with where it was read) as a warning."""
    seen: dict[str, TrainingExample] = {}
    kept: list[TrainingExample] = []
    for ex in data.examples:
        key = ex.text.casefold()
        first = seen.get(key)
        if first is not None:
            where = f" ({ex.origin})" if ex.origin else ""
            if first.intent != ex.intent:
                data.warnings.append(f"conflict: example {ex.text!r}{where} is under both {first.intent!r} and "
                                     f"{ex.intent!r}; kept {first.intent!r}")
            else:
                data.warnings.append(f"duplicate: example {ex.text!r}{where} of {ex.intent!r} dropped")
            continue
        seen[key] = ex
        kept.append(ex)
    data.examples = kept
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
            for lang in by_lang:
                for answer in part.variants(intent, lang):
                    out.add_response(intent, lang, answer)
        for intent, metadata in part.intent_metadata.items():
            out.intent_metadata.setdefault(intent, metadata)
        out.warnings.extend(w for w in part.warnings if " has only " not in w and "belongs to no intent" not in w)
        out.conversions.extend(part.conversions)
    merged = validate(out)
    merged.warnings = list(dict.fromkeys(merged.warnings))
    return merged


def load_rasa_markdown(text: str, *, source: str = "<md>", base: tuple[Path, ...] = ()) -> TrainingData:
    """Convert Rasa 1.x Markdown NLU data (`## intent:name`, `## synonym:`, `## regex:`, `## lookup:` with
    `- ` lines or a lookup file path) and 1.x retrieval responses (`* group/name` then `- answer`)."""
    data = TrainingData()
    section: tuple[str, str] | None = None
    response_of: str | None = None
    in_comment = False
    counts = {"intent": 0, "synonym": 0, "regex": 0, "lookup": 0, "response": 0}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = _MD_INLINE_COMMENT.sub("", raw).strip()
        if in_comment or line.startswith("<!--"):
            in_comment = "-->" not in line
            continue
        if not line:
            continue
        header = _MD_SECTION.match(line)
        if header:
            kind, name = header.group(1), header.group(2)
            name = _check_name(name, source=source, kind=kind, line=number) if kind != "synonym" else \
                _check_text(name, source=_origin(source, number), what="synonym name")
            section, response_of = (kind, name), None
            counts[kind] += 1
            continue
        if line.startswith("##"):
            section, response_of = None, None  # a story or another 1.x section: not NLU data
            continue
        if line.startswith("*") and "/" in line and section is None:
            name = line[1:].strip()
            response_of = _check_name(name, source=source, kind="intent", line=number)
            counts["response"] += 1
            continue
        if line.startswith("-"):
            item = _check_text(line[1:].strip(), source=_origin(source, number), what="example")
            if response_of is not None:
                from nlu.text import detect_language

                data.add_response(response_of, detect_language(item, default="en"), item)
            elif section is None:
                continue
            elif section[0] == "intent":
                _add_examples(data, section[1], [(item, number, None)], source=source)
            elif section[0] == "synonym":
                data.synonyms.setdefault(section[1], []).append(" ".join(item.split()))
            elif section[0] == "regex":
                data.regexes.setdefault(section[1], []).append(_check_pattern(item, section[1], source, number))
            else:
                data.lookups.setdefault(section[1], []).append(" ".join(item.split()))
            continue
        if section is not None and section[0] == "lookup":
            data.lookups.setdefault(section[1], []).extend(_lookup_file(line, base, source=source, line=number))
            continue
        if section is not None or response_of is not None:
            raise DataFormatError(f"expected a '- ' line, got {line[:60]!r}", source=source, line=number)
    if not any(counts.values()):
        data.conversions.append(f"{source}: Rasa 1.x Markdown without NLU data (stories?), skipped")
        return validate(data)
    data.conversions.append(
        f"{source}: Rasa 1.x Markdown converted ({counts['intent']} intents, {len(data.examples)} examples, "
        f"{sum(len(e.entities) for e in data.examples)} entity annotations, {counts['synonym']} synonyms, "
        f"{counts['regex']} regexes, {counts['lookup']} lookups, {counts['response']} retrieval responses)")
    return validate(data)


def _lookup_file(name: str, base: tuple[Path, ...], *, source: str, line: int) -> list[str]:
    """The elements of a lookup table file a Rasa 1.x Markdown section names (one per line), looked for beside the
    Markdown file, then in the data directory and its parent (Rasa's paths are relative to the project)."""
    candidates = [folder / name for folder in base]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DataFormatError(f"lookup file {name[:100]!r} not found (upload its elements as '- ' lines)",
                              source=source, line=line)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"lookup file {name[:100]!r} is not UTF-8", source=source, line=line) from exc
    return [_check_text(v.strip(), source=str(path), what="lookup element") for v in lines if v.strip()]


def sniff_format(text: str) -> str:
    """yaml, json or md: what an uploaded document without a file name looks like."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        return "json"
    if any(_MD_SECTION.match(line.strip()) for line in text.splitlines()[:2000]):
        return "md"
    return "yaml"


def loads(text: str, fmt: str, *, source: str = "<data>", base: tuple[Path, ...] = ()) -> TrainingData:
    """Parse text in a named format: yaml, json, md (Rasa 1.x Markdown) or csv; `auto` guesses."""
    fmt = fmt.lower().lstrip(".")
    if fmt == "auto":
        fmt = sniff_format(text)
    if fmt in ("yml", "yaml"):
        return load_rasa_yaml(text, source=source)
    if fmt == "json":
        return load_rasa_json(text, source=source)
    if fmt in ("md", "markdown"):
        return load_rasa_markdown(text, source=source, base=base)
    if fmt == "csv":
        return load_csv(text, source=source)
    raise DataFormatError(f"unsupported format {fmt!r}; use yaml, json, md or csv", source=source)


def load_training_data(path: Path | str | None = None) -> TrainingData:
    """Load a file (by its suffix) or every supported file of a directory and its subfolders; None loads the
    shipped data."""
    path = Path(path) if path is not None else DEFAULT_DATA_DIR
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise DataFormatError("no .yml/.yaml/.json/.md/.csv files in directory or its subfolders",
                                  source=str(path))
        return merge(_load_file(p, base=(p.parent, path, path.parent)) for p in files)
    return _load_file(path, base=(path.parent, path.parent.parent))


def _load_file(path: Path, *, base: tuple[Path, ...] = ()) -> TrainingData:
    if not path.exists():
        raise DataFormatError("file not found", source=str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text: {exc.reason}", source=str(path)) from exc
    return loads(text, path.suffix, source=str(path), base=base)


def data_languages(data: TrainingData) -> list[str]:
    """The languages of the examples, the most frequent first (what an exported Rasa config names)."""
    from nlu.text import detect_language

    counts: dict[str, int] = {}
    for ex in data.examples:
        lang = detect_language(ex.text, default="en")
        counts[lang] = counts.get(lang, 0) + 1
    return sorted(counts, key=lambda lang: (-counts[lang], lang))


def dump_rasa_yaml(data: TrainingData, *, include_responses: bool = True) -> str:
    """Write Rasa 3 YAML: `nlu:` with `examples: |` blocks (Rasa's list form for examples with metadata), entity
    markup, synonyms, regexes, lookups, then responses."""
    out = io.StringIO()
    out.write(f'version: "{RASA_YAML_VERSION}"\n')
    by_intent: dict[str, list[TrainingExample]] = {}
    for ex in data.examples:
        by_intent.setdefault(ex.intent, []).append(ex)
    sections: list[tuple[str, str, list[str]]] = [("synonym", n, v) for n, v in data.synonyms.items()]
    sections += [("regex", n, v) for n, v in data.regexes.items()]
    sections += [("lookup", n, v) for n, v in data.lookups.items()]
    if by_intent or sections:
        out.write("\nnlu:\n")
    for intent, examples in by_intent.items():
        metadata = data.intent_metadata.get(intent)
        if metadata is None and all(e.metadata is None for e in examples):
            out.write(f"- intent: {_yaml_scalar(intent)}\n  examples: |\n")
            for ex in examples:
                out.write(f"    - {render_markup(ex.text, ex.entities)}\n")
            continue
        item: dict[str, Any] = {"intent": intent}
        if metadata is not None:
            item["metadata"] = metadata
        item["examples"] = [{"text": render_markup(ex.text, ex.entities),
                             **({"metadata": ex.metadata} if ex.metadata is not None else {})} for ex in examples]
        out.write(yaml.safe_dump([item], allow_unicode=True, sort_keys=False, width=1000))
    for kind, name, items in sections:
        out.write(f"- {kind}: {_yaml_scalar(name)}\n  examples: |\n")
        for value in items:
            out.write(f"    - {' '.join(value.split())}\n")
    if include_responses and data.responses:
        responses = {
            f"{RESPONSE_PREFIX}{intent}": [
                {"text": text, "metadata": {"lang": lang}}
                for lang in sorted(by_lang) for text in data.variants(intent, lang)
            ]
            for intent, by_lang in data.responses.items()
        }
        out.write("\n")
        out.write(yaml.safe_dump({"responses": responses}, allow_unicode=True, sort_keys=False, width=100))
    return out.getvalue()


def dump_rasa_json(data: TrainingData) -> str:
    """Write Rasa's legacy JSON format (responses are not part of it)."""
    examples = []
    for e in data.examples:
        entities = [{"start": a.start, "end": a.end, "value": a.value or e.text[a.start:a.end], "entity": a.entity,
                     **{k: v for k, v in (("role", a.role), ("group", a.group)) if v is not None}}
                    for a in e.entities]
        examples.append({"text": e.text, "intent": e.intent, "entities": entities,
                         **({"metadata": e.metadata} if e.metadata is not None else {})})
    doc = {
        "rasa_nlu_data": {
            "common_examples": examples,
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
