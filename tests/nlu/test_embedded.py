"""The embedded engine: quality on held-out data, fallback, bad input, versions, hot swap, concurrency."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from nlu.config import NluSettings
from nlu.embedded import NEVER, EmbeddedEngine, choose_threshold
from nlu.engines import build_engine
from nlu.errors import DataFormatError, ModelNotFoundError, TrainingInProgressError
from nlu.protocol import IntentEngine, TrainingData, TrainingExample
from nlu.segment import clean_message, segments
from nlu.text import to_features_text
from tests.support.nlu import assert_fast_path_matches


def tiny_data(greeting_word: str = "hello") -> TrainingData:
    rows = [(f"{greeting_word} {i}", "greeting") for i in range(8)] + [(f"bye now {i}", "goodbye") for i in range(8)]
    rows += [(f"my bill is wrong {i}", "billing_question") for i in range(8)]
    return TrainingData(examples=[TrainingExample(t, i) for t, i in rows])


def test_it_is_an_intent_engine(trained_engine: EmbeddedEngine) -> None:
    assert isinstance(trained_engine, IntentEngine)


async def test_accuracy_on_held_out_split(trained_engine: EmbeddedEngine,
                                          split: tuple[TrainingData, TrainingData]) -> None:
    report = await trained_engine.evaluate(split[1])
    assert report.accuracy >= 0.85
    assert report.macro_f1 >= 0.85
    assert report.answered_precision is not None
    assert report.answered_precision >= 0.93
    assert set(report.per_intent) == set(split[1].intents)
    assert report.n_examples == len(split[1].examples)


async def test_unknown_intents_count_as_out_of_scope(trained_engine: EmbeddedEngine) -> None:
    data = TrainingData(examples=[TrainingExample(t, "weather") for t in (
        "какая погода завтра в москве", "will it rain tomorrow", "recipe for borscht", "кто выиграл матч")])
    report = await trained_engine.evaluate(data)
    assert report.oos_recall is not None
    assert report.oos_recall >= 0.5


@pytest.mark.parametrize(
    ("text", "intent", "language"),
    [
        ("ne rabotaet internet", "internet_down", "ru"),
        ("Здравствуйте, где мой заказ ORD-123456?", "order_status", "ru"),
        ("My internet has been down since yesterday", "internet_down", "en"),
        ("как оплатить картой?", "payment_methods", "ru"),
        ("what are your opening hours", "office_hours", "en"),
        ("соедините с оператором", "human_handoff", "ru"),
    ],
)
async def test_parses_typical_messages(trained_engine: EmbeddedEngine, text: str, intent: str,
                                       language: str) -> None:
    parse = await trained_engine.parse(text)
    assert (parse.intent, parse.language) == (intent, language)
    assert parse.confident
    assert parse.model_version == trained_engine.active_version
    assert parse.ranking[0].name == intent
    assert len(parse.ranking) == 5
    assert all(0.0 <= r.confidence <= 1.0 for r in parse.ranking)


async def test_entities_come_with_the_parse(trained_engine: EmbeddedEngine) -> None:
    parse = await trained_engine.parse("где мой заказ ORD-123456?")
    order = parse.entity("order_number")
    assert order is not None
    assert order.value == "ORD-123456"


@pytest.mark.parametrize(
    "text",
    ["", "   \n\t ", "😀😀😀", "🙂 👍", "12345", "?!...", "\x00\x01"],
)
async def test_no_letters_no_intent(trained_engine: EmbeddedEngine, text: str) -> None:
    parse = await trained_engine.parse(text)
    assert parse.intent is None
    assert not parse.confident
    assert parse.confidence == 0.0


@pytest.mark.parametrize(
    "text",
    ["asdkjh qweqwe zxcvb", "sdfsdf", "ыволаыдва жщзхъ", "lorem ipsum dolor sit amet", "xxxxxxxxxxxxxxxxxxxxxx",
     "qwertyuiop asdfghjkl", "ЙЦУКЕН ФЫВАПР"],
)
async def test_gibberish_falls_back(trained_engine: EmbeddedEngine, text: str) -> None:
    parse = await trained_engine.parse(text)
    assert not parse.confident


async def test_huge_text_is_cut_and_safe(trained_engine: EmbeddedEngine) -> None:
    text = "не работает интернет " + "бла " * 25_000
    assert len(text.encode()) > 100_000
    parse = await trained_engine.parse(text)
    assert parse.text == text
    assert parse.intent == "internet_down"
    noise = await trained_engine.parse("ж" * 100_000)
    assert not noise.confident


async def test_mixed_scripts(trained_engine: EmbeddedEngine) -> None:
    parse = await trained_engine.parse("Привет, my интернет не work")
    assert parse.language == "ru"
    assert parse.intent is not None
    english = await trained_engine.parse("hi, internet ne работает at all")
    assert english.intent == "internet_down"


def test_fast_path_matches_sklearn(trained_engine: EmbeddedEngine, split: tuple[TrainingData, TrainingData]) -> None:
    texts = [e.text for e in split[1].examples[:200]] + ["ne rabotaet internet", "ёлки ЁЖ", "z"]
    assert_fast_path_matches(trained_engine, texts, atol=1e-6)


def test_a_letter_and_its_sentences_scored_in_one_batch_match_scoring_each_alone(
        trained_engine: EmbeddedEngine) -> None:
    loaded = trained_engine._loaded
    assert loaded is not None
    letter = ("Добрый день! Я ваш абонент с 2016 года, живу на ул. Ленина, д. 5, кв. 12. С утра не работает "
              "интернет, роутер перезагружала. Когда починят? Заодно: где мой заказ номер 123456?\nС уважением, Анна")
    body = clean_message(letter)
    parts = segments(body)
    assert len(parts) > 1
    features = [to_features_text(t, "ru") for t in [body, *parts]]
    assert sorted(features[0].split()) == sorted(" ".join(features[1:]).split())  # the words the sum needs
    # (atol 1e-6: the sentence encoder computes in float32, and a batch rounds differently from one text alone.)
    for summed in (False, True):
        scores, known = loaded.scorer.scores_many(features, first_is_sum=summed)
        for row, text in enumerate(features):
            alone, alone_known = loaded.scorer.scores(text)
            np.testing.assert_allclose(scores[row], alone, atol=1e-6)
            assert known[row] == alone_known
    # The letter's row of the batch (n-grams summed from its sentences) is what the sklearn path computes.
    reference = trained_engine.probabilities(loaded.model, [letter])[0]
    batch = EmbeddedEngine._probs_many(loaded, [body, *parts], "ru", parts_are_sentences=True)
    np.testing.assert_allclose(batch[0], reference, atol=1e-6)
    # Latin words in a Russian letter get a Cyrillic spelling of the whole text: not a sum of the sentences'.
    latin = letter.replace("номер 123456", "ORD-123456")
    latin_body = clean_message(latin)
    batch = EmbeddedEngine._probs_many(loaded, [latin_body, *segments(latin_body)], "ru", parts_are_sentences=True)
    np.testing.assert_allclose(batch[0], trained_engine.probabilities(loaded.model, [latin])[0], atol=1e-6)


def test_threshold_is_chosen_for_the_target_precision() -> None:
    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, True, False, True, False])
    assert choose_threshold(confidence, correct, 1.0) == 0.8
    assert choose_threshold(confidence, correct, 0.8) == 0.6
    assert choose_threshold(confidence, np.zeros(7, dtype=bool), 0.95) == NEVER
    assert choose_threshold(np.array([]), np.array([], dtype=bool), 0.95) == NEVER


def test_manifest_records_threshold_and_metrics(trained_engine: EmbeddedEngine) -> None:
    (version,) = trained_engine.list_versions()
    manifest = version.manifest
    assert version.active
    assert manifest["threshold"] == trained_engine.threshold
    cv = manifest["cross_validation"]
    assert cv["answered_precision"] >= 0.9
    assert cv["oos_recall"] is not None
    assert manifest["size_bytes"] > 0
    assert len(manifest["intents"]) == 24  # the 23 shipped intents and out_of_scope


def test_versions_activate_rollback_and_hot_swap(model_dir: Path) -> None:
    engine = EmbeddedEngine(model_dir)
    with pytest.raises(ModelNotFoundError):
        engine.load_active()
    first = engine.train_sync(tiny_data("hello"))
    second = engine.train_sync(tiny_data("greetings"))
    assert [v.version for v in engine.list_versions()] == [first, second]
    assert engine.parse_sync("hello").model_version == second

    # Another process (a restarted server) picks up the active version.
    other = EmbeddedEngine(model_dir)
    assert other.load_active() == second

    engine.activate(first)
    assert engine.parse_sync("hello").model_version == first
    assert EmbeddedEngine(model_dir).load_active() == first

    engine.activate(second)
    assert engine.rollback() == first
    assert engine.active_version == first
    assert [v.version for v in engine.list_versions() if v.active] == [first]

    with pytest.raises(ModelNotFoundError):
        engine.activate("no-such-version")
    with pytest.raises(ModelNotFoundError):
        engine.activate("../../etc")
    # Issue 9: a name longer than the file system allows raised OSError (ENAMETOOLONG), a 500 through the API.
    for bad in ("v" * 300, "я" * 200, "a\x00b", "a/b", " v1", "v1\n"):
        with pytest.raises(ModelNotFoundError):
            engine.activate(bad)
        with pytest.raises(ModelNotFoundError):
            engine.delete_version(bad)
    with pytest.raises(ValueError, match="active"):
        engine.delete_version(first)
    engine.delete_version(second)
    assert [v.version for v in engine.list_versions()] == [first]


def test_untrained_version_can_be_activated_later(model_dir: Path) -> None:
    engine = EmbeddedEngine(model_dir)
    first = engine.train_sync(tiny_data())
    candidate = engine.train_sync(tiny_data("hey there"), activate=False)
    assert engine.active_version == first
    engine.activate(candidate)
    assert engine.active_version == candidate


async def test_parses_during_a_swap_see_one_model(model_dir: Path) -> None:
    engine = EmbeddedEngine(model_dir)
    first = engine.train_sync(tiny_data())
    second = engine.train_sync(tiny_data("greetings"))
    seen: set[str | None] = set()
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            engine.activate(first)
            engine.activate(second)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        for _ in range(300):
            seen.add((await engine.parse("hello")).model_version)
    finally:
        stop.set()
        swapper.join()
    assert seen <= {first, second}


async def test_training_while_training_is_a_clear_error(model_dir: Path) -> None:
    engine = EmbeddedEngine(model_dir)
    started = threading.Event()
    release = threading.Event()
    stages: list[str] = []

    def progress(fraction: float, stage: str) -> None:
        stages.append(stage)
        started.set()
        release.wait(timeout=30)

    first = asyncio.create_task(engine.train(tiny_data(), progress))
    assert await asyncio.to_thread(started.wait, 30)
    with pytest.raises(TrainingInProgressError):
        await engine.train(tiny_data())
    with pytest.raises(TrainingInProgressError):
        engine.train_sync(tiny_data())
    release.set()
    version = await first
    assert engine.active_version == version
    assert stages[-1] == "done"
    assert await engine.train(tiny_data("hi")) != version  # the lock is released afterwards


async def test_cancelled_training_keeps_the_lock_until_it_ends(model_dir: Path) -> None:
    engine = EmbeddedEngine(model_dir)
    started = threading.Event()
    release = threading.Event()

    def progress(fraction: float, stage: str) -> None:
        started.set()
        release.wait(timeout=30)

    job = asyncio.create_task(engine.train(tiny_data(), progress))
    assert await asyncio.to_thread(started.wait, 30)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    with pytest.raises(TrainingInProgressError):
        engine.train_sync(tiny_data())
    release.set()
    for _ in range(300):
        if engine.active_version is not None:
            break
        await asyncio.sleep(0.05)
    assert engine.train_sync(tiny_data("hi"))


def test_another_process_training_is_refused(model_dir: Path) -> None:
    import fcntl

    model_dir.mkdir(parents=True)
    with (model_dir / ".train.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # what a training in another process holds
        with pytest.raises(TrainingInProgressError, match="another process"):
            EmbeddedEngine(model_dir).train_sync(tiny_data())
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert EmbeddedEngine(model_dir).train_sync(tiny_data())


def test_sync_active_follows_another_instance(model_dir: Path) -> None:
    trainer = EmbeddedEngine(model_dir)
    first = trainer.train_sync(tiny_data())
    follower = EmbeddedEngine(model_dir)
    assert follower.sync_active()
    assert follower.active_version == first
    assert not follower.sync_active()
    second = trainer.train_sync(tiny_data("greetings"))
    assert follower.sync_active()
    assert follower.active_version == second


def test_training_needs_two_intents(model_dir: Path) -> None:
    data = TrainingData(examples=[TrainingExample("hello", "greeting"), TrainingExample("hi", "greeting")])
    with pytest.raises(DataFormatError, match="two intents"):
        EmbeddedEngine(model_dir).train_sync(data)


def test_single_example_intent_still_trains(model_dir: Path) -> None:
    data = tiny_data()
    data.examples.append(TrainingExample("what is roaming", "roaming"))
    version = EmbeddedEngine(model_dir).train_sync(data)
    assert version


async def test_no_model_parses_to_nothing(model_dir: Path) -> None:
    parse = await EmbeddedEngine(model_dir).parse("hello")
    assert parse.intent is None
    assert not parse.confident
    with pytest.raises(ModelNotFoundError):
        await EmbeddedEngine(model_dir).evaluate(tiny_data())


async def test_build_engine_trains_shipped_data_on_first_start(model_dir: Path) -> None:
    engine = build_engine(NluSettings(), model_dir)
    assert isinstance(engine, EmbeddedEngine)
    parse = await engine.parse("не работает интернет")
    assert parse.intent == "internet_down"
    version = engine.active_version
    again = build_engine(NluSettings(), model_dir)
    assert isinstance(again, EmbeddedEngine)
    assert again.active_version == version
    assert "ru" in again.responses()["roaming"]
    assert build_engine(NluSettings(engine="keyword"), model_dir).name == "keyword"
    assert build_engine(NluSettings(engine="rasa"), model_dir).name == "rasa"


def test_workers_starting_together_on_an_empty_model_dir_train_once(model_dir: Path) -> None:
    """Several API workers start at once with no model: one trains, the others wait and load it."""
    calls: list[str] = []
    barrier = threading.Barrier(3)
    outcomes: list[tuple[str, bool]] = []

    def data() -> TrainingData:
        calls.append("trained")
        return tiny_data()

    def start() -> None:
        barrier.wait()
        outcomes.append(EmbeddedEngine(model_dir).load_or_train(data))

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert calls == ["trained"]
    assert len({version for version, _ in outcomes}) == 1
    assert sorted(trained for _, trained in outcomes) == [False, False, True]
    assert len([p for p in model_dir.iterdir() if p.is_dir()]) == 1
