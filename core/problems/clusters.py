"""Group similar texts without a fixed number of groups: what customers wrote that the bot did not understand.

Texts are compared by TF-IDF over word stems (their first letters) and stem pairs, and character 3-5-grams within
word boundaries (Russian endings and typos still share most of a word's n-grams), by cosine distance, and grouped by
average-linkage agglomerative clustering cut at a distance threshold: the number of clusters follows from the data,
and a text joins a group only when it is close to the group as a whole (single linkage would chain unrelated texts
through intermediate ones). Identical texts (after normalising case, spaces and digits) are clustered once and
counted. Pure CPU work on plain data: the service runs it off the event loop.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

# scikit-learn and SciPy are imported where they are used: they were a third of `import api.app` (which every
# `switchboard` command, server process and test worker pays), and only clustering needs them.
if TYPE_CHECKING:
    from scipy import sparse

MAX_SAMPLES = 5
MAX_CHOICES = 50  # the distinct texts of a cluster an admin picks examples from
MAX_TERMS = 6
STEM = 5

# Words that say nothing about a problem; the terms shown skip them (the vectors keep them: they weigh little).
STOP_WORDS = frozenset("""
a an and are as at be but by can could do does for from have hello hi how i i'm im is it its me my no not of on or
please so that the this to was we what when why with you your hey thanks thank there their they am
и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня
еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там
потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтоб без будто чего раз тоже
себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее
сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про
всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им
более всегда конечно всю между здравствуйте добрый день привет пожалуйста спасибо меня мне у вас
""".split())

_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True, slots=True)
class Text:
    message_id: int
    text: str
    created_at: datetime


@dataclass(slots=True)
class Sample:
    message_id: int  # the most recent message with this text
    text: str
    count: int  # messages with this text (after normalising)


@dataclass(slots=True)
class Cluster:
    key: int  # the smallest message id of the cluster: stable while its messages are in the period
    size: int  # messages
    terms: list[str]
    samples: list[Sample]  # the texts nearest the cluster's centre, most typical first
    choices: list[Sample]  # the distinct texts to pick examples from (most typical first, at most MAX_CHOICES)
    message_ids: list[int] = field(default_factory=list)
    first_at: datetime | None = None
    last_at: datetime | None = None


def normalise(text: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("0", text.lower())).strip()


def cluster_texts(texts: Sequence[Text], *, distance: float, min_size: int) -> list[Cluster]:
    """The clusters of `texts` of at least `min_size` messages, biggest first (ties: the most recent first)."""
    from scipy import sparse
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    groups: dict[str, list[Text]] = {}
    for t in texts:
        key = normalise(t.text)
        if key:
            groups.setdefault(key, []).append(t)
    distinct = list(groups)
    if not distinct:
        return []
    counts = np.array([len(groups[d]) for d in distinct], dtype=np.float64)
    if len(distinct) == 1:
        labels = np.zeros(1, dtype=np.int64)
        words, vocabulary = _word_vectors(distinct)
        vectors = words
    else:
        words, vocabulary = _word_vectors(distinct)
        stems = TfidfVectorizer(analyzer=_stems, sublinear_tf=True, dtype=np.float32).fit_transform(distinct)
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                                dtype=np.float32).fit_transform(distinct)
        vectors = normalize(sparse.hstack([normalize(stems), normalize(chars)]).tocsr())
        similarity = (vectors @ vectors.T).toarray()
        distances = np.clip(1.0 - similarity, 0.0, 2.0)
        np.fill_diagonal(distances, 0.0)
        labels = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                         distance_threshold=distance).fit_predict(distances)
    clusters: list[Cluster] = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        size = int(counts[rows].sum())
        if size < min_size:
            continue
        clusters.append(_describe(rows, distinct, groups, counts, vectors, words, vocabulary))
    clusters.sort(key=lambda c: (-c.size, -(c.last_at.timestamp() if c.last_at else 0), c.key))
    return clusters


def _stems(text: str) -> list[str]:
    """Words cut to their first letters, and neighbouring pairs of them: a crude stemmer that works the same for
    Russian and English ("роутер", "роутере", "роутером"; "blinking", "blinks") and needs no dictionary."""
    words = [w[:STEM] for w in _WORD.findall(text)]
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def _word_vectors(distinct: list[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=_WORD.pattern,
                                 sublinear_tf=True, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform(distinct)
    except ValueError:  # no word of two letters or more anywhere
        return sparse.csr_matrix((len(distinct), 1), dtype=np.float32), np.array([""])
    return matrix.tocsr(), vectorizer.get_feature_names_out()


def _describe(rows: np.ndarray, distinct: list[str], groups: dict[str, list[Text]], counts: np.ndarray,
              vectors: sparse.csr_matrix, words: sparse.csr_matrix, vocabulary: np.ndarray) -> Cluster:
    weights = counts[rows]
    members = vectors[rows]
    centre = np.asarray(members.T @ weights).ravel() / weights.sum()
    closeness = np.asarray(members @ centre).ravel()
    order = rows[np.lexsort((-counts[rows], -closeness))]  # most typical first, then the more frequent
    choices = []
    for row in order[:MAX_CHOICES]:
        items = groups[distinct[row]]
        latest = max(items, key=lambda t: (t.created_at, t.message_id))
        choices.append(Sample(message_id=latest.message_id, text=latest.text, count=len(items)))
    everything = [t for row in rows for t in groups[distinct[row]]]
    return Cluster(
        key=min(t.message_id for t in everything), size=len(everything), terms=_terms(rows, counts, words, vocabulary),
        samples=choices[:MAX_SAMPLES], choices=choices, message_ids=sorted(t.message_id for t in everything),
        first_at=min(t.created_at for t in everything), last_at=max(t.created_at for t in everything))


def _terms(rows: np.ndarray, counts: np.ndarray, words: sparse.csr_matrix, vocabulary: np.ndarray) -> list[str]:
    """The words and word pairs that weigh most in the cluster (stop words skipped), and that several of its
    texts share when it has several."""
    weights = counts[rows]
    block = words[rows]
    mass = np.asarray(block.T @ weights).ravel()
    present = Counter[int]()
    for i in range(len(rows)):
        for col in block[i].indices:
            present[int(col)] += int(weights[i])
    need = 2 if weights.sum() > 1 else 1
    terms: list[str] = []
    for col in np.argsort(-mass):
        if mass[col] <= 0 or len(terms) >= MAX_TERMS:
            break
        term = str(vocabulary[col])
        if present[int(col)] < need or all(w in STOP_WORDS for w in term.split()):
            continue
        words_of = set(term.split())
        if any(words_of <= set(t.split()) or words_of >= set(t.split()) for t in terms):
            continue  # a pair that only repeats a word already shown, or a word of a pair already shown
        terms.append(term)
    return terms
