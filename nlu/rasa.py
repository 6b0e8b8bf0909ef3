"""The `rasa` engine: the IntentEngine protocol over a Rasa 3.6 server's HTTP API.

Rasa runs as its own server (its Python and dependencies are incompatible with ours). Training posts one
YAML document (pipeline config, domain intents and responses, NLU data) to `/model/train`, which saves the
model in the server's `models/` directory; `PUT /model` then loads it. Parsing is `/model/parse`. Entities
come from Switchboard's own extractor, language from its detector, so both engines answer alike.

Versions (the VersionedEngine protocol): every model file the server saved for us is a version. Rasa's API
lists no models, so the engine keeps its own record (a JSON file beside the embedded engine's models: each
version's manifest, the active one, the activation history); switching a version on is `PUT /model` with its
file. Rasa cannot evaluate a throwaway model without loading it in place of the served one, so training reports
no held-out evaluation here (the server's own `rasa test` does that).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from nlu.data import RESPONSE_PREFIX, data_languages, dump_rasa_yaml
from nlu.embedded import evaluate_scored
from nlu.entities import EntityExtractor
from nlu.errors import EngineUnavailableError, ModelNotFoundError, NluError, TrainingInProgressError
from nlu.protocol import EvaluationReport, IntentScore, ModelVersion, Parse, ProgressCallback, TrainingData
from nlu.text import MAX_TEXT_CHARS, detect_language, has_letters

DEFAULT_RASA_CONFIG = Path(__file__).parent / "data" / "rasa" / "config.yml"
TRAIN_TIMEOUT_SECONDS = 3600.0
EVALUATE_CONCURRENCY = 8
MODEL_SUFFIX = ".tar.gz"
HISTORY_LIMIT = 100
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def rasa_domain(data: TrainingData) -> dict[str, Any]:
    """The domain part of Rasa data: intents (a retrieval intent `faq/ask_x` under its group `faq`, as Rasa
    declares it), the annotated entities with their roles and groups, and the responses with their language in
    metadata."""
    domain: dict[str, Any] = {"intents": sorted({name.split("/", 1)[0] for name in data.intents})}
    entities: dict[str, dict[str, set[str]]] = {}
    for example in data.examples:
        for a in example.entities:
            kinds = entities.setdefault(a.entity, {"roles": set(), "groups": set()})
            if a.role is not None:
                kinds["roles"].add(a.role)
            if a.group is not None:
                kinds["groups"].add(a.group)
    if entities:
        domain["entities"] = [name if not any(kinds.values()) else
                              {name: {k: sorted(v) for k, v in kinds.items() if v}}
                              for name, kinds in sorted(entities.items())]
    if data.responses:
        domain["responses"] = {
            f"{RESPONSE_PREFIX}{intent}": [{"text": text, "metadata": {"lang": lang}}
                                           for lang in sorted(by_lang) for text in data.variants(intent, lang)]
            for intent, by_lang in data.responses.items()
        }
    return domain


def rasa_nlu_yaml(data: TrainingData) -> str:
    """The NLU part of Rasa data as a YAML document (with its own `version:` line)."""
    return dump_rasa_yaml(TrainingData(examples=data.examples, synonyms=data.synonyms, regexes=data.regexes,
                                       lookups=data.lookups, intent_metadata=data.intent_metadata),
                          include_responses=False)


def rasa_config(data: TrainingData, config_path: Path = DEFAULT_RASA_CONFIG) -> dict[str, Any]:
    """The pipeline config for this data: the data's own language (the most frequent of its examples), a
    ResponseSelector when it has retrieval intents, and DIET's entity recognition on when it has annotations."""
    config: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    languages = data_languages(data)
    if languages:
        config["language"] = languages[0]
    pipeline = config.get("pipeline") or []
    if any("/" in name for name in data.intents) and not any(
            isinstance(c, dict) and c.get("name") == "ResponseSelector" for c in pipeline):
        pipeline.insert(len(pipeline) - 1 if pipeline and pipeline[-1].get("name") == "EntitySynonymMapper"
                        else len(pipeline), {"name": "ResponseSelector", "epochs": 20})
    if data.entity_types:
        for component in pipeline:
            if isinstance(component, dict) and component.get("name") == "DIETClassifier":
                component["entity_recognition"] = True
    return config


def rasa_training_payload(data: TrainingData, config_path: Path = DEFAULT_RASA_CONFIG) -> str:
    """One YAML document with config, domain (intents, responses) and NLU data, as /model/train takes it."""
    config = rasa_config(data, config_path)
    head = yaml.safe_dump({**config, **rasa_domain(data)}, allow_unicode=True, sort_keys=False)
    return head + "\n" + rasa_nlu_yaml(data).split("\n", 1)[1]


class RasaEngine:
    """Talks to a Rasa server; an unreachable server raises EngineUnavailableError."""

    name = "rasa"

    def __init__(self, url: str, *, timeout_seconds: float = 10.0, threshold: float = 0.7,
                 config_path: Path = DEFAULT_RASA_CONFIG, extras: TrainingData | None = None,
                 token: str | None = None, versions_file: Path | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.threshold = threshold
        self.config_path = config_path
        self._extractor = EntityExtractor(extras)
        self._params = {"token": token} if token else {}
        self._training = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self.model_file: str | None = None
        # The record of the versions trained through this engine; None keeps it in memory only.
        self.versions_file = versions_file
        self._record: dict[str, Any] | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(base_url=self.url, timeout=self.timeout_seconds)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def _request(self, method: str, path: str, *, seconds: float | None = None,
                       accept: frozenset[int] = frozenset(), **kwargs: Any) -> httpx.Response:
        params = {**self._params, **kwargs.pop("params", {})}
        try:
            response = await self._http().request(
                method, path, params=params, timeout=seconds or self.timeout_seconds, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            raise EngineUnavailableError(f"Rasa server at {self.url} is unreachable: {exc!r}") from exc
        except httpx.TimeoutException as exc:
            raise EngineUnavailableError(
                f"Rasa server at {self.url} did not answer {method} {path} in time: {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"Rasa server at {self.url} failed: {exc!r}") from exc
        if response.status_code in accept:
            return response
        if response.status_code == 409:
            raise EngineUnavailableError(f"Rasa server at {self.url} has no model loaded; train one first")
        if response.status_code >= 500:
            raise EngineUnavailableError(
                f"Rasa server at {self.url} answered {response.status_code} to {method} {path}: "
                f"{response.text[:500]}")
        if response.status_code >= 400:
            raise NluError(f"Rasa server rejected {method} {path} ({response.status_code}): {response.text[:500]}")
        return response

    async def version(self) -> str:
        """The Rasa version of the server (also a cheap liveness check)."""
        body = (await self._request("GET", "/version")).json()
        return str(body.get("version", ""))

    async def status(self) -> dict[str, Any]:
        """The server's /status (loaded model, running training jobs); model_file is None with no model."""
        response = await self._request("GET", "/status", accept=frozenset({409}))
        if response.status_code == 409:  # Rasa's answer while no model is loaded
            return {"model_file": None}
        body: dict[str, Any] = response.json()
        return body

    async def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> str:
        return await self.train_version(data, progress, activate=True)

    async def train_version(self, data: TrainingData, progress: ProgressCallback | None = None, *,
                            activate: bool) -> str:
        if self._training.locked():
            raise TrainingInProgressError("a Rasa training job is already running; wait for it to finish")
        async with self._training:
            report = progress or (lambda _fraction, _stage: None)
            report(0.0, "training on the Rasa server")
            started = time.perf_counter()
            payload = rasa_training_payload(data, self.config_path)
            response = await self._request(
                "POST", "/model/train", seconds=TRAIN_TIMEOUT_SECONDS, content=payload.encode("utf-8"),
                headers={"Content-Type": "application/x-yaml"},
                params={"save_to_default_model_directory": "true", "force_training": "true"},
            )
            filename = str(response.headers.get("filename") or "")
            if not filename:
                raise NluError("Rasa trained a model but did not name its file")
            version = filename.removesuffix(MODEL_SUFFIX)
            record = await self._read_record()
            record["versions"][version] = {
                "version": version, "engine": self.name, "model_file": f"models/{filename}",
                "created_at": dt.datetime.now(dt.UTC).isoformat(), "n_examples": len(data.examples),
                "intents": data.intents, "train_seconds": round(time.perf_counter() - started, 3),
                "warnings": list(data.warnings)}
            await self._write_record(record)
            if activate:
                report(0.9, "loading the model on the Rasa server")
                await self._load_on_server(version)
                self._extractor = EntityExtractor(data)
                await self._record_activation(version)
            report(1.0, "done")
            return version

    # --- VersionedEngine ----------------------------------------------------------------------------

    @property
    def active_version(self) -> str | None:
        """The version this engine loaded on the server (None until it loads one)."""
        if self.model_file is None:
            return None
        return self.model_file.removeprefix("models/").removesuffix(MODEL_SUFFIX)

    async def holdout_evaluation(self, train: TrainingData, test: TrainingData) -> EvaluationReport | None:
        return None  # the server serves one model: evaluating another would replace it for every customer

    async def saved_versions(self) -> list[ModelVersion]:
        record = await self._read_record()
        return [ModelVersion(version, None, dict(manifest), active=version == record["active"])
                for version, manifest in sorted(record["versions"].items(),
                                                key=lambda item: (str(item[1].get("created_at")), item[0]))]

    async def activate_version(self, version: str) -> None:
        if version not in (await self._read_record())["versions"]:
            raise ModelNotFoundError(f"model version {version[:80]!r} was not trained through this engine")
        await self._load_on_server(version)
        await self._record_activation(version)

    async def rollback_version(self) -> str:
        record = await self._read_record()
        history: list[str] = [v for v in record["history"] if v in record["versions"]]
        while history and history[-1] == record["active"]:
            history.pop()
        if not history:
            raise ModelNotFoundError("no earlier model version to roll back to")
        previous = history[-1]
        await self._load_on_server(previous)
        record["active"], record["history"] = previous, history
        await self._write_record(record)
        return previous

    async def follow_version(self, version: str) -> None:
        if self.active_version != version:
            await self._load_on_server(version)

    async def _load_on_server(self, version: str) -> None:
        if not _VERSION_NAME.fullmatch(version) or ".." in version:
            raise ModelNotFoundError(f"invalid model version {version[:80]!r}")
        model_file = f"models/{version}{MODEL_SUFFIX}"
        try:
            await self._request("PUT", "/model", json={"model_file": model_file}, seconds=TRAIN_TIMEOUT_SECONDS)
        except EngineUnavailableError:
            raise
        except NluError as exc:  # the server refused the file: it has no such model
            raise ModelNotFoundError(f"the Rasa server has no model version {version!r}: {exc}") from exc
        self.model_file = model_file

    async def _record_activation(self, version: str) -> None:
        record = await self._read_record()
        record["active"] = version
        if not record["history"] or record["history"][-1] != version:
            record["history"].append(version)
        record["history"] = record["history"][-HISTORY_LIMIT:]
        await self._write_record(record)

    async def _read_record(self) -> dict[str, Any]:
        if self._record is None:
            record: dict[str, Any] = {}
            path = self.versions_file
            if path is not None and await asyncio.to_thread(path.is_file):
                loaded = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
                record = loaded if isinstance(loaded, dict) else {}
            versions = record.get("versions")
            history = record.get("history")
            self._record = {
                "versions": versions if isinstance(versions, dict) else {},
                "active": record.get("active") if isinstance(record.get("active"), str) else None,
                "history": [str(v) for v in history] if isinstance(history, list) else [],
            }
        return self._record

    async def _write_record(self, record: dict[str, Any]) -> None:
        self._record = record
        path = self.versions_file
        if path is None:
            return
        text = json.dumps(record, ensure_ascii=False, indent=2)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)

        await asyncio.to_thread(write)

    async def parse(self, text: str) -> Parse:
        language = detect_language(text)
        if not has_letters(text[: MAX_TEXT_CHARS * 4]):
            return Parse(text=text, intent=None, confidence=0.0, confident=False, language=language,
                         entities=self._extractor.extract(text))
        body = (await self._request("POST", "/model/parse", json={"text": text[:MAX_TEXT_CHARS]})).json()
        intent = body.get("intent") or {}
        name = intent.get("name")
        confidence = float(intent.get("confidence") or 0.0)
        # A retrieval intent: Rasa classifies its group (faq) and its ResponseSelector picks the name (faq/ask_x).
        selected = ((body.get("response_selector") or {}).get(name) or {}).get("response") or {}
        if isinstance(selected.get("intent_response_key"), str):
            name = selected["intent_response_key"]
        ranking = tuple(IntentScore(str(r["name"]), float(r["confidence"]))
                        for r in body.get("intent_ranking") or [] if r.get("name"))
        return Parse(text=text, intent=name, confidence=confidence,
                     confident=name is not None and confidence >= self.threshold, language=language,
                     ranking=ranking[:5], entities=self._extractor.extract(text),
                     model_version=self.model_file)

    async def evaluate(self, data: TrainingData) -> EvaluationReport:
        semaphore = asyncio.Semaphore(EVALUATE_CONCURRENCY)

        async def one(text: str) -> Parse:
            async with semaphore:
                return await self.parse(text)

        parses = await asyncio.gather(*(one(e.text) for e in data.examples))
        known = {r.name for p in parses for r in p.ranking}
        return evaluate_scored(
            truth=[e.intent for e in data.examples],
            predicted=[p.intent or "" for p in parses],
            confidence=np.array([p.confidence for p in parses]),
            threshold=self.threshold,
            known_intents=sorted(known),
        )
