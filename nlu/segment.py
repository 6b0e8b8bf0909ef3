"""Long messages: what of an e-mail body the classifier should read, and its sentences.

An e-mail carries its request among a greeting, context (an address, a contract number, how long the writer has
been a customer), a closing, a signature and sometimes the quoted earlier message. The channel strips what it
recognises of quotes (channels/email/parser.py); this side removes the greeting line, the signature block and any
quote left over, then splits the rest into sentences so each request can be scored on its own (nlu.embedded).
Short messages (chat) are left exactly as they are: "привет, есть кто?" is a greeting, not an empty text.
"""

from __future__ import annotations

import re

LONG_TEXT_CHARS = 120
"""From this length, or with a line break inside, a text is read as a letter and cleaned; shorter is chat."""
MAX_SEGMENTS = 8
"""Sentences scored one by one at most (the rest join the last one): bounds the parse time of a long letter."""
MIN_SEGMENT_WORDS = 3
"""A shorter sentence ("Срочно!", "Thanks.") joins its neighbour: alone it says too little to be scored."""

_GREETING = re.compile(
    r"^\s*(?:(?:добр(?:ый|ое|ого)\s+(?:день|утро|вечер|времени\s+суток)|здравствуй(?:те)?|привет(?:ствую)?|"
    r"доброго\s+(?:дня|времени\s+суток)|уважаем(?:ые|ый|ая)(?:[ \t]+[\w-]+){0,3}|"
    r"hello|hi|hey|good\s+(?:morning|afternoon|evening|day)|dear(?:[ \t]+[\w.-]+){0,3}|greetings)"
    r"(?:[ \t,]+(?:team|support|all|коллеги|сотрудники|поддержка|служба\s+поддержки|sir\s+or\s+madam|"
    r"(?-i:[A-ZА-ЯЁ][\w.-]*(?:[ \t]+[A-ZА-ЯЁ][\w.-]*){0,2})))?)[ \t]*[!,.:;]*\s*",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(?:--\s*|__+|с\s+уважением|с\s+наилучшими\s+пожеланиями|всего\s+(?:доброго|хорошего)|"
    r"заранее\s+(?:спасибо|благодарю)|спасибо\s+заранее|благодарю|спасибо|с\s+благодарностью|"
    r"best(?:\s+regards|\s+wishes)?|kind\s+regards|regards|sincerely|yours(?:\s+(?:sincerely|faithfully|truly))?|"
    r"many\s+thanks|thanks(?:\s+in\s+advance)?|thank\s+you(?:\s+in\s+advance)?|cheers|"
    r"sent\s+from\s+my|отправлено\s+(?:с|из)|get\s+outlook\s+for)\b[^\n]{0,40}$",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"^\s*(?:с\s+уважением|с\s+наилучшими\s+пожеланиями|best\s+(?:regards|wishes)|kind\s+regards|regards|sincerely|"
    r"yours\s+(?:sincerely|faithfully|truly)|sent\s+from\s+my|отправлено\s+(?:с|из)|get\s+outlook\s+for)\b[^\n]{0,60}$",
    re.IGNORECASE,
)
"""A closing formula that ends a one-line letter ("... Жду ответа. С уважением, Анна Петрова"); thanks are not one:
"Спасибо, очень помогли." at the end of a letter is what it says."""
CLOSING_TAIL = 1
"""Short sentences that may follow the closing formula in the same line (a name, a phone number)."""
_QUOTE_HEAD = re.compile(
    r"^\s*(?:-{2,}\s*(?:original\s+message|исходное\s+сообщение|пересылаемое\s+сообщение|forwarded\s+message)"
    r"|on\s.{0,200}\swrote:\s*$|.{0,200}\s(?:пишет|написал[аи]?):\s*$|(?:from|от):\s.+$)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?…]+[\s\"»)]+|\n+")
_LAST_WORD = re.compile(r"(?:^|\s)([^\W\d_]{1,5})$")
_ABBREVIATIONS = frozenset("""
    ул д кв г гг пос пгт пр просп пер корп стр тел т е им обл р руб коп см др мин сек ч млн тыс ст эт оф пл наб ш
    бул мкр вл зд st apt no nr mr mrs ms dr tel ave rd ln jr sr etc vs approx dept ext pp bldg fl ste
""".split())
"""Words a full stop abbreviates without ending the sentence (ул. Садовой, д. 7, тел. +7, St. Petersburg); any
single letter too (initials: А. С. Пушкин). Other short words end sentences ("Thank you. Kind regards")."""
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_long(text: str) -> bool:
    """Whether a text reads as a letter (cleaned and scored by sentence) rather than a chat line."""
    stripped = text.strip()
    return len(stripped) >= LONG_TEXT_CHARS or "\n" in stripped


def clean_message(text: str) -> str:
    """The body of a letter without its quote, signature and greeting; a chat line is returned unchanged.

    Falls back to the text itself when nothing with letters would be left (a letter that is only a greeting).
    """
    if not is_long(text):
        return text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.lstrip().startswith(">") or _QUOTE_HEAD.match(line):
            break  # a quoted earlier message: nothing after its header is the customer's new request
        if kept and _SIGN_OFF.match(line) and _is_tail(lines[index + 1:]):
            break
        kept.append(line)
    body = _without_closing("\n".join(kept).strip())
    without_greeting = _GREETING.sub("", body, count=1) if _starts_with_greeting(body) else body
    if _WORD.search(without_greeting):
        return without_greeting.strip()
    return body if _WORD.search(body) else text


def _starts_with_greeting(body: str) -> bool:
    match = _GREETING.match(body)
    if match is None:
        return False
    rest = body[match.end():]
    # "Здравствуйте! ..." or a greeting line: the greeting ends at a sign or a line break, not mid-sentence
    # ("Hi there is no internet" keeps its words).
    ending = body[max(0, match.end() - 3):match.end()]
    return bool(rest.strip()) and (bool(re.search(r"[!,.:;\n]", ending)) or rest.startswith("\n"))


def _is_tail(after: list[str]) -> bool:
    """A sign-off starts the signature only near the end: at most five short lines follow it."""
    rest = [x for x in after if x.strip()]
    return len(rest) <= 5 and all(len(x.strip()) <= 80 for x in rest)


def _abbreviation(before: str) -> bool:
    """Whether the text before a full stop ends in an abbreviation."""
    last = _LAST_WORD.search(before)
    return last is not None and (len(last.group(1)) == 1 or last.group(1).lower() in _ABBREVIATIONS)


def _without_closing(body: str) -> str:
    """A letter without the closing formula its last line ends in (one-line letters of a web form or chat keep
    "С уважением, Анна Петрова" in the line; a letter's own signature lines are gone by then)."""
    head, _, last = body.rpartition("\n")
    sentences = [x for x in _sentences(last) if x.strip()]
    for i in range(1, len(sentences)):
        after = sentences[i + 1:]
        if (_CLOSING.match(sentences[i].strip()) and len(after) <= CLOSING_TAIL
                and all(len(x.strip()) <= 60 for x in after)):
            return f"{head}\n{''.join(sentences[:i]).strip()}" if head else "".join(sentences[:i]).strip()
    return body


def _sentences(text: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        following = text[match.end():match.end() + 1]
        if "\n" not in match.group(0):
            if following.islower():
                continue  # "т. е. не работает", a decimal or a list: the sentence goes on
            if match.group(0).startswith(".") and _abbreviation(text[start:match.start()]):
                continue
        out.append(text[start:match.end()])
        start = match.end()
    out.append(text[start:])
    return out


def segments(text: str) -> list[str]:
    """The sentences of a cleaned letter, short ones joined to a neighbour, at most MAX_SEGMENTS."""
    parts = [p.strip() for p in _sentences(text) if p.strip()]
    merged: list[str] = []
    carry = ""
    for part in parts:
        piece = f"{carry} {part}".strip() if carry else part
        if len(_WORD.findall(piece)) < MIN_SEGMENT_WORDS:
            carry = piece
            continue
        merged.append(piece)
        carry = ""
    if carry:
        if merged:
            merged[-1] = f"{merged[-1]} {carry}"
        else:
            merged.append(carry)
    if len(merged) > MAX_SEGMENTS:
        merged = [*merged[: MAX_SEGMENTS - 1], " ".join(merged[MAX_SEGMENTS - 1:])]
    return merged


_CLAUSE_BREAK = re.compile(
    r"[;?!]\s+|[,:]?\s*(?:^|\b)(?:и\s+ещ[её]|а\s+ещ[её]|ещ[её]\s+вопрос|also|and\s+also)\b[\s:,]*|"
    r",\s*(?:и|а|а\s+также|также|ещ[её]|плюс|and|also|plus)\s+|\s+(?:а\s+также|and\s+also|and\s+then)\s+",
    re.IGNORECASE,
)


def clauses(text: str) -> list[str]:
    """The clauses of a chat line that may each be a request ("смените паспорт, и где мой заказ?")."""
    parts = [c.strip() for sentence in _sentences(text) for c in _CLAUSE_BREAK.split(sentence) if c and c.strip()]
    return [p for p in parts if len(_WORD.findall(p)) >= MIN_SEGMENT_WORDS] if len(parts) > 1 else parts
