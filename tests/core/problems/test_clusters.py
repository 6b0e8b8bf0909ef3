"""Clustering on a fixed RU/EN corpus: the obviously similar texts together, nothing unrelated mixed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.problems.clusters import Text, cluster_texts, normalise
from core.problems.config import ProblemsSettings
from tests.core.problems.corpus import CORPUS

SETTINGS = ProblemsSettings()
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def corpus() -> tuple[list[Text], dict[int, str]]:
    texts, truth = [], {}
    for topic, items in CORPUS.items():
        for text in items:
            i = len(texts) + 1
            texts.append(Text(message_id=i, text=text, created_at=START + timedelta(minutes=i)))
            truth[i] = topic
    return texts, truth


def test_similar_texts_go_together_and_unrelated_ones_stay_apart() -> None:
    texts, truth = corpus()
    clusters = cluster_texts(texts, distance=SETTINGS.clusters_distance, min_size=SETTINGS.clusters_min_size)
    topics = [{truth[i] for i in c.message_ids} for c in clusters]
    assert all(len(t) == 1 for t in topics), topics  # no cluster mixes two topics
    # Every topic's texts in one cluster each (the noise in none), biggest first.
    assert sorted(next(iter(t)) for t in topics) == sorted(k for k in CORPUS if k != "noise")
    assert [c.size for c in clusters] == sorted((len(v) for k, v in CORPUS.items() if k != "noise"), reverse=True)
    assert next(iter(topics[0])) == "router_ru"
    router = clusters[0]
    assert "роутер" in " ".join(router.terms) and router.key == 1 and router.message_ids == [1, 2, 3, 4]
    assert router.first_at == START + timedelta(minutes=1) and router.last_at == START + timedelta(minutes=4)
    assert {s.text for s in router.choices} == set(CORPUS["router_ru"]) and len(router.samples) == 4


def test_repeated_texts_count_once_per_text_and_a_lone_text_is_no_cluster() -> None:
    texts = [Text(i, t, START + timedelta(minutes=i)) for i, t in enumerate(
        ["Роутер мигает красным", "роутер  мигает красным", "РОУТЕР МИГАЕТ КРАСНЫМ", "где мой счёт за 2025 год"], 1)]
    clusters = cluster_texts(texts, distance=SETTINGS.clusters_distance, min_size=2)
    assert len(clusters) == 1
    only = clusters[0]
    assert only.size == 3 and only.message_ids == [1, 2, 3]
    assert [(s.message_id, s.count) for s in only.choices] == [(3, 3)]  # the most recent of the same text
    assert cluster_texts(texts[:1], distance=0.85, min_size=2) == []
    assert cluster_texts([], distance=0.85, min_size=2) == []
    assert normalise(" Счёт  за 2025\tгод ") == "счёт за 0 год"


def test_min_size_and_distance_change_what_is_shown() -> None:
    texts, truth = corpus()
    bigger = cluster_texts(texts, distance=SETTINGS.clusters_distance, min_size=3)
    assert {truth[c.key] for c in bigger} == {"router_ru", "tv_ru", "sim_ru"}
    strict = cluster_texts(texts, distance=0.3, min_size=2)
    assert len(strict) < len(cluster_texts(texts, distance=SETTINGS.clusters_distance, min_size=2))
