"""The VersionedEngine protocol training jobs and model versions use: the embedded engine on disk, and the Rasa
engine's record of its versions (what needs no server; the real-server test covers the rest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu.embedded import ACTIVE_FILE, EmbeddedEngine
from nlu.errors import ModelNotFoundError
from nlu.protocol import EngineHolder, KeywordEngine, VersionedEngine
from nlu.rasa import RasaEngine
from tests.conftest import free_port
from tests.nlu.test_embedded import tiny_data


async def test_embedded_versions_through_the_protocol(tmp_path: Path) -> None:
    engine = EmbeddedEngine(tmp_path)
    assert isinstance(engine, VersionedEngine) and EngineHolder(engine).versioned is engine
    first = await engine.train_version(tiny_data(), activate=True)
    second = await engine.train_version(tiny_data("greetings"), activate=False)
    assert engine.active_version == first  # not switched on: the caller does that everywhere
    saved = await engine.saved_versions()
    assert [(v.version, v.active) for v in saved] == [(first, True), (second, False)]
    assert saved[1].manifest["n_examples"] == 24 and saved[1].manifest["cross_validation"]

    await engine.follow_version(second)  # another instance switched: parse with it, record nothing
    assert engine.active_version == second and (tmp_path / ACTIVE_FILE).read_text().strip() == first
    await engine.activate_version(second)
    assert (tmp_path / ACTIVE_FILE).read_text().strip() == second
    assert await engine.rollback_version() == first and engine.active_version == first
    with pytest.raises(ModelNotFoundError):
        await engine.activate_version("no-such-version")

    train, test = tiny_data(), tiny_data("hello there")
    report = await engine.holdout_evaluation(train, test)
    assert report is not None and report.n_examples == 24 and report.accuracy == 1.0
    assert engine.active_version == first  # a throwaway model: the served one is untouched


def test_the_keyword_engine_keeps_no_versions() -> None:
    assert EngineHolder(KeywordEngine()).versioned is None


async def test_rasa_versions_are_the_models_it_trained(tmp_path: Path) -> None:
    record = tmp_path / "rasa-versions.json"
    record.write_text(json.dumps({
        "versions": {"20261201-100000-a": {"created_at": "2026-12-01T10:00:00+00:00", "n_examples": 10},
                     "20261202-100000-b": {"created_at": "2026-12-02T10:00:00+00:00", "n_examples": 12}},
        "active": "20261202-100000-b", "history": ["20261202-100000-b"]}))
    engine = RasaEngine(f"http://127.0.0.1:{free_port()}", timeout_seconds=2, versions_file=record)
    try:
        assert isinstance(engine, VersionedEngine)
        assert engine.active_version is None  # nothing loaded on the server by this process yet
        saved = await engine.saved_versions()
        assert [(v.version, v.active, v.path) for v in saved] == [
            ("20261201-100000-a", False, None), ("20261202-100000-b", True, None)]
        with pytest.raises(ModelNotFoundError, match="not trained through this engine"):
            await engine.activate_version("20261203-100000-c")
        with pytest.raises(ModelNotFoundError, match="no earlier model version"):
            await engine.rollback_version()
        with pytest.raises(ModelNotFoundError, match="invalid model version"):
            await engine.follow_version("../../etc/passwd")
        assert await engine.holdout_evaluation(tiny_data(), tiny_data()) is None
    finally:
        await engine.aclose()
