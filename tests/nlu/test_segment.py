"""The letter cleaner and splitter on e-mails shaped like a real operator's inbox."""

from __future__ import annotations

import pytest

from nlu.segment import clauses, clean_message, is_long, segments

RU_LETTER = """Здравствуйте!

Я ваш абонент уже пять лет, живу по адресу ул. Ленина, д. 5, кв. 12. Со вчерашнего вечера нет интернета, \
роутер мигает красным. Перезагружала дважды, не помогло.

С уважением,
Анна Петрова
+7 912 345-67-89"""

EN_REPLY = """Hello team,

I ordered a new router last week (order ORD-123456) and still have no news. Could you tell me where it is?

Best regards,
John Smith
Sent from my iPhone

On Mon, 3 Nov 2026 at 10:00, TelecomPlus <support@telecomplus.example> wrote:
> Thank you for your order.
> We will deliver it within 5 days."""


def test_greeting_and_signature_are_removed() -> None:
    body = clean_message(RU_LETTER)
    assert body.startswith("Я ваш абонент")
    assert body.endswith("не помогло.")
    assert "уважением" not in body and "Петрова" not in body and "+7" not in body


def test_quoted_reply_and_mobile_signature_are_removed() -> None:
    body = clean_message(EN_REPLY)
    assert body == ("I ordered a new router last week (order ORD-123456) and still have no news. "
                    "Could you tell me where it is?")


@pytest.mark.parametrize(
    "quote_head",
    ["-----Original Message-----", "-------- Пересылаемое сообщение --------",
     "3 ноября 2026 г., в 10:00, ТелекомПлюс <support@telecomplus.example> пишет:",
     "From: TelecomPlus <support@telecomplus.example>"],
)
def test_outlook_gmail_and_russian_quote_headers_end_the_body(quote_head: str) -> None:
    letter = f"Добрый день!\nГде мой заказ ORD-123456? Жду уже две недели.\n\n{quote_head}\nВаш заказ принят."
    assert clean_message(letter) == "Где мой заказ ORD-123456? Жду уже две недели."


def test_dash_dash_signature_and_thanks_line() -> None:
    letter = ("Hi,\nmy TV box shows no signal on every channel since yesterday evening.\nThanks!\n-- \n"
              "Helen Clarke\nFlat 3, 10 Park Road")
    assert clean_message(letter) == "my TV box shows no signal on every channel since yesterday evening."


def test_a_sign_off_word_in_the_middle_of_a_long_letter_is_not_a_signature() -> None:
    lines = ["Hello,", "Thanks for the quick fix last week.", *[f"Line {i} of a long story about my router." for i in
                                                                   range(7)]]
    body = clean_message("\n".join(lines))
    assert body.startswith("Thanks for the quick fix") and "Line 6" in body


def test_chat_lines_are_left_alone() -> None:
    for text in ("привет, есть кто?", "Здравствуйте", "Hi there is no internet at my place"):
        assert not is_long(text)
        assert clean_message(text) == text


def test_a_letter_that_is_only_a_greeting_keeps_its_text() -> None:
    letter = "Здравствуйте!\n\nС уважением,\nАнна"
    assert clean_message(letter).strip() == "Здравствуйте!"


def test_sentences_do_not_break_at_abbreviations_and_short_ones_join_a_neighbour() -> None:
    parts = segments(clean_message(RU_LETTER))
    assert parts == [
        "Я ваш абонент уже пять лет, живу по адресу ул. Ленина, д. 5, кв. 12.",
        "Со вчерашнего вечера нет интернета, роутер мигает красным.",
        "Перезагружала дважды, не помогло.",
    ]
    urgent = "Срочно! Не работает интернет уже второй день."
    assert segments(urgent) == [urgent]


def test_a_very_long_letter_is_cut_to_a_bounded_number_of_segments() -> None:
    letter = " ".join(f"Предложение номер {i} о разном." for i in range(30))
    assert len(segments(letter)) == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("поменяйте мои паспортные данные, и где мой заказ?", ["поменяйте мои паспортные данные", "где мой заказ?"]),
        ("Не работает интернет с утра. И ещё: почему в счете списали лишние 300 рублей?",
         ["Не работает интернет с утра.", "почему в счете списали лишние 300 рублей?"]),
        ("I want to switch to a cheaper plan; what are your opening hours?",
         ["I want to switch to a cheaper plan", "what are your opening hours?"]),
        ("не работает интернет и телевизор", ["не работает интернет и телевизор"]),
    ],
)
def test_clauses_of_a_chat_line(text: str, expected: list[str]) -> None:
    assert clauses(text) == expected


def test_a_one_line_letter_loses_its_closing_formula_but_not_its_thanks() -> None:
    # Web-form and chat letters come in one line: the closing is a sentence, not a signature line.
    letter = ("Добрый день, коллеги. Вчера вечером я вернулась из командировки. Спасибо, очень помогли. "
              "Номер договора 77-0431. Надеюсь на скорый ответ. Отправлено с iPhone")
    assert clean_message(letter) == ("Вчера вечером я вернулась из командировки. Спасибо, очень помогли. "
                                     "Номер договора 77-0431. Надеюсь на скорый ответ.")
    english = ("Hi team, the internet has been down since Monday evening and the router blinks red. "
               "Kind regards. Igor Smith, +44 161 496 0000")
    assert clean_message(english) == "the internet has been down since Monday evening and the router blinks red."
    # Not a closing: followed by more than a name, or the letter's only sentence.
    middle = ("Hello, my bill is wrong this month. Sincerely, I do not understand the roaming line. "
              "It says 40 pounds. I was at home all month.")
    assert clean_message(middle) == middle.removeprefix("Hello, ")
    only = "Regards from a very unhappy customer whose internet has been down for a whole week now, please help!"
    assert clean_message(only) == only


def test_sentences_end_after_short_words_but_not_after_abbreviations_or_initials() -> None:
    assert segments("I have used your services for several years. Thank you. Kind regards to all of you.") == [
        "I have used your services for several years.", "Thank you. Kind regards to all of you."]
    assert segments("Интернета нет. Телевизора тоже нет. Помогите нам, пожалуйста, срочно.") == [
        "Интернета нет. Телевизора тоже нет.", "Помогите нам, пожалуйста, срочно."]
    text = "Живу на пр. Мира, д. 7, тел. +7 903 123-45-67, договор на А. С. Пушкина, St. Petersburg office. Всё."
    assert segments(text) == [text]
