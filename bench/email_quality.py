"""E-mail parsing quality: quote stripping on public corpora, charset detection, the parser's time per mail.

    .venv/bin/python bench/email_quality.py [--repeat 20] [--compare-with OLD_PARSER.py]

1. Quote stripping: the pass rate of each candidate on mailgun/talon's text-quotation cases, the fixtures of
   github/email_reply_parser and our own cases (Russian forms and the cases of issue 17), copied into
   bench/data/ with their origin and licence. A case passes when the candidate's text has the expected
   non-blank lines (line ends and blank lines do not count). Candidates: this parser, and the libraries that
   are installed of email-reply-parser, mail-parser-reply and quotequail (pip install them to compare; talon
   itself no longer installs on Python 3.11). Then a table per language.
2. Charsets: short texts in the charsets Russian, Western, Japanese, Chinese and Korean mail arrives in,
   undeclared: the previous hand-written heuristic, charset-normalizer alone, and this parser's decode_bytes.
3. Time: parse_email over the test fixtures and the corpora wrapped as mails, p50/p99 per mail (limit 25 ms).

`--compare-with` adds a candidate: strip_quoted_text of another parser.py (e.g. `git show main:...` saved to a
file), to measure before/after on the same cases.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import charset_normalizer  # noqa: E402

from channels.email.parser import decode_bytes, parse_email, strip_quoted_text  # noqa: E402

DATA = ROOT / "bench" / "data"
CORPORA = {"talon": "talon_text_quotations.json", "email_reply_parser": "email_reply_parser_emails.json",
           "own": "own_reply_cases.json"}
FIXTURES = ROOT / "tests" / "channels" / "email" / "fixtures"


def load_cases() -> dict[str, list[dict[str, str]]]:
    return {name: json.loads((DATA / file).read_text(encoding="utf-8"))["cases"] for name, file in CORPORA.items()}


def candidates(compare_with: str | None) -> dict[str, Callable[[str], str]]:
    found: dict[str, Callable[[str], str]] = {"switchboard": strip_quoted_text}
    if compare_with:
        spec = importlib.util.spec_from_file_location("previous_parser", compare_with)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["previous_parser"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        found["previous"] = module.strip_quoted_text
    try:
        from email_reply_parser import EmailReplyParser as Erp
        found["email-reply-parser"] = Erp.parse_reply
    except ImportError:
        pass
    try:
        from mailparser_reply import EmailReplyParser as Mpr
        from mailparser_reply.constants import MAIL_LANGUAGES
        mpr = Mpr(languages=list(MAIL_LANGUAGES))
        found["mail-parser-reply"] = lambda text: mpr.parse_reply(text=text)
    except ImportError:
        pass
    try:
        import quotequail
        found["quotequail"] = lambda text: "\n".join(part for show, part in quotequail.quote(text) if show)
    except ImportError:
        pass
    return found


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]


def passes(strip: Callable[[str], str], case: dict[str, str]) -> bool:
    try:
        return lines_of(strip(case["input"]) or "") == lines_of(case["expected"])
    except Exception:  # a library that fails on a case fails the case
        return False


def quote_tables(cases: dict[str, list[dict[str, str]]], found: dict[str, Callable[[str], str]]) -> list[str]:
    names = list(found)
    out = ["## Quote stripping: cases passed", "",
           "| corpus | cases | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    results = {n: {c: [passes(found[n], case) for case in cases[c]] for c in cases} for n in names}
    for corpus, items in cases.items():
        cells = [f"{sum(results[n][corpus])}" for n in names]
        out.append(f"| {corpus} | {len(items)} | " + " | ".join(cells) + " |")
    by_lang: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for corpus, items in cases.items():
        for index, case in enumerate(items):
            by_lang[case["lang"]].append((corpus, index))
    out += ["", "## Quote stripping per language (all three corpora)", "",
            "| language | cases | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for lang in sorted(by_lang, key=lambda lg: (-len(by_lang[lg]), lg)):
        cells = [str(sum(results[n][c][i] for c, i in by_lang[lang])) for n in names]
        out.append(f"| {lang} | {len(by_lang[lang])} | " + " | ".join(cells) + " |")
    failed = [f"{c}/{case['name']}" for c, items in cases.items() for i, case in enumerate(items)
              if not results["switchboard"][c][i]]
    out += ["", f"switchboard fails: {', '.join(failed) or 'none'}"]
    return out


CHARSET_SAMPLES = [
    ("ru", "Привет", ("cp1251", "koi8-r")),
    ("ru", "Где мой заказ?", ("cp1251", "koi8-r")),
    ("ru", "Не работает интернет", ("cp1251", "koi8-r")),
    ("ru", "Счёт за ноябрь", ("cp1251", "koi8-r")),
    ("ru", "Добрый день! Пришёл счёт за ноябрь на 1500 рублей, а тариф стоит 700. Почему?", ("cp1251", "koi8-r")),
    ("ru", "Здравствуйте, где мой заказ ORD-2024-0042? Жду уже неделю.", ("cp1251", "koi8-r")),
    ("ru", "Error 651: подключение прервано удалённым компьютером", ("cp1251", "koi8-r")),
    ("uk", "Доброго дня! Не працює інтернет, що робити?", ("cp1251", "koi8-u")),
    ("fr", "Été à Paris", ("latin-1", "cp1252")),
    ("fr", "Je n'ai plus accès à internet depuis hier soir, pouvez-vous vérifier ?", ("latin-1", "cp1252")),
    ("de", "Grüße aus München", ("latin-1", "cp1252")),
    ("de", "Mein Router funktioniert nicht mehr, bitte prüfen Sie die Störung.", ("latin-1", "cp1252")),
    ("es", "¿Dónde está mi pedido? Gracias, señor.", ("latin-1", "cp1252")),
    ("en", "naïve résumé", ("cp1252",)),
    ("en", "Price: 10€ — “quoted”", ("cp1252",)),
    ("ja", "日本語のメールです。よろしくお願いします。", ("shift_jis", "euc-jp", "iso2022_jp")),
    ("ja", "インターネットが使えません", ("shift_jis", "euc-jp", "iso2022_jp")),
    ("zh", "你好，我的网络不能用了，请帮忙检查一下。", ("gb18030",)),
    ("zh", "你好，我的網路不能用了，請幫忙檢查一下。", ("big5",)),
    ("zh", "请问我的订单在哪里？", ("gb18030",)),
    ("ko", "안녕하세요 인터넷이 안 됩니다", ("euc-kr",)),
]


def previous_heuristic(data: bytes) -> str:
    """The hand-written guess this parser had before charset-normalizer (kept here to measure against)."""
    if data.isascii():
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best: tuple[float, str] | None = None
    for codec in ("cp1251", "koi8-r"):
        text = data.decode(codec, errors="replace")
        letters = [c for c in text if c.isalpha()]
        cyr = [c for c in letters if "\u0400" <= c <= "\u04ff"]
        if not cyr or len(cyr) < 0.3 * len(letters):
            continue
        lower = sum(1 for c in cyr if c.islower()) / len(cyr)
        if lower >= 0.55 and (best is None or lower > best[0]):
            best = (lower, text)
    return best[1] if best else data.decode("cp1252", errors="replace")


def normalizer_alone(data: bytes) -> str:
    best = charset_normalizer.from_bytes(data).best()
    return str(best) if best is not None else data.decode("cp1252", errors="replace")


def charset_table() -> list[str]:
    methods: dict[str, Callable[[bytes], str]] = {
        "previous heuristic": previous_heuristic, "charset-normalizer": normalizer_alone,
        "decode_bytes": lambda data: decode_bytes(data, None)}
    samples = [(lang, text, codec, text.encode(codec)) for lang, text, codecs in CHARSET_SAMPLES for codec in codecs]
    out = ["## Undeclared charset: samples read right", "",
           "| language | samples | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    langs = sorted({s[0] for s in samples}, key=lambda lg: [s[0] for s in samples].index(lg))
    totals = dict.fromkeys(methods, 0)
    misses: list[str] = []
    for lang in langs:
        mine = [s for s in samples if s[0] == lang]
        cells = []
        for name, method in methods.items():
            ok = sum(1 for _l, text, _c, data in mine if method(data) == text)
            totals[name] += ok
            cells.append(str(ok))
        misses += [f"{lang}/{codec}" for _l, text, codec, data in mine if decode_bytes(data, None) != text]
        out.append(f"| {lang} | {len(mine)} | " + " | ".join(cells) + " |")
    out.append(f"| all | {len(samples)} | " + " | ".join(str(v) for v in totals.values()) + " |")
    timings = []
    for name, method in methods.items():
        start = time.perf_counter()
        for _l, _t, _c, data in samples:
            method(data)
        timings.append(f"{name} {1000 * (time.perf_counter() - start) / len(samples):.2f} ms")
    out += ["", "per sample: " + ", ".join(timings), f"decode_bytes misses: {', '.join(misses) or 'none'}"]
    return out


def as_mail(text: str, index: int) -> bytes:
    return (f"From: Customer <c{index}@example.org>\nTo: support@example.com\nSubject: case {index}\n"
            f"Message-ID: <q{index}@example.org>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
            f"Content-Transfer-Encoding: 8bit\n\n{text}\n").encode()


def timing_table(cases: dict[str, list[dict[str, str]]], repeat: int) -> list[str]:
    mails = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))]
    mails += [as_mail(case["input"], i) for i, case in enumerate(c for items in cases.values() for c in items)]
    times: list[float] = []
    for _ in range(repeat):
        for raw in mails:
            start = time.perf_counter()
            try:
                parse_email(raw)
            except ValueError:  # the fixtures that are no mail on purpose
                pass
            times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p99 = times[int(0.99 * (len(times) - 1))]
    return ["## parse_email time per mail", "",
            "| mails | runs | p50 ms | p99 ms | max ms | limit |", "|---:|---:|---:|---:|---:|---|",
            f"| {len(mails)} | {len(times)} | {statistics.median(times):.2f} | {p99:.2f} | {times[-1]:.2f} | "
            f"p99 < 25 ms: {'yes' if p99 < 25 else 'NO'} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--compare-with", help="another parser.py whose strip_quoted_text to measure too")
    args = parser.parse_args()
    cases = load_cases()
    found = candidates(args.compare_with)
    lines = [*quote_tables(cases, found), "", *charset_table(), "", *timing_table(cases, args.repeat)]
    print("\n".join(lines))
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (uptime)")


if __name__ == "__main__":
    main()
