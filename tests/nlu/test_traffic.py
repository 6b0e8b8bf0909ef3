"""The shipped model on traffic shaped like a real inbox: long letters, near-domain questions, two requests,
language."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.embedded import EmbeddedEngine
from nlu.protocol import OUT_OF_SCOPE

LETTER_RU = """Добрый день!

Меня зовут Ирина, договор 55-0192, квартира на ул. Мира, д. 3, кв. 8. Второй день подряд интернет не работает \
вообще, ни один сайт не открывается. Роутер перезагружала.

С уважением,
Ирина Волкова
8 (916) 555-44-33"""

LETTER_EN = """Hi team,

We are at 12 Elm Close. Could you tell me what payment methods you accept? I would like to pay by card from \
now on instead of cash.

Kind regards,
Robert Hill
Sent from my phone

On Fri, 7 Nov 2026, TelecomPlus <billing@telecomplus.example> wrote:
> Your invoice for October is attached."""


@pytest.fixture(scope="module")
def shipped_engine(trained_model_dir: Path) -> EmbeddedEngine:
    """The model of all shipped data (tests/conftest.py trains it once per session); only read here."""
    engine = EmbeddedEngine(trained_model_dir)
    engine.load_active()
    return engine


async def test_long_letters_with_signature_are_answered(shipped_engine: EmbeddedEngine) -> None:
    ru = await shipped_engine.parse(LETTER_RU)
    assert (ru.intent, ru.confident, ru.language) == ("internet_down", True, "ru")
    en = await shipped_engine.parse(LETTER_EN)
    assert (en.intent, en.confident, en.language) == ("payment_methods", True, "en")
    assert [r.name for r in en.requests] == ["payment_methods"]


@pytest.mark.parametrize(
    "text",
    ["хочу стать дилером ваших сим-карт в своем магазине", "какой самый дешевый тариф у мтс?",
     "есть ли у вас вакансии для инженеров", "I'd like to become a reseller of your SIM cards",
     "what is the cheapest plan at vodafone?", "are you hiring engineers?"],
)
async def test_near_domain_questions_are_not_answered(shipped_engine: EmbeddedEngine, text: str) -> None:
    parse = await shipped_engine.parse(text)
    assert not parse.confident, (parse.intent, parse.confidence)
    assert parse.requests == ()


async def test_the_out_of_scope_class_is_never_confident(shipped_engine: EmbeddedEngine) -> None:
    parse = await shipped_engine.parse("хочу работать у вас, куда отправить резюме?")
    assert parse.intent == OUT_OF_SCOPE and not parse.confident


@pytest.mark.parametrize(
    ("text", "intents"),
    [
        ("поменяйте мои паспортные данные, и где мой заказ?", {"personal_data_change", "order_status"}),
        ("How much does roaming in Spain cost? And how much is on my balance right now?",
         {"roaming", "balance_check"}),
        ("Не работает интернет с утра. И ещё: почему в счете списали лишние 300 рублей?",
         {"internet_down", "billing_question"}),
    ],
)
async def test_two_requests_in_one_message_are_both_found(shipped_engine: EmbeddedEngine, text: str,
                                                          intents: set[str]) -> None:
    parse = await shipped_engine.parse(text)
    assert {r.name for r in parse.requests} == intents
    assert parse.requests[0].name == parse.intent


@pytest.mark.parametrize("text", ["Здравствуйте, у меня не работает интернет", "my internet is down, please help",
                                  "привет, есть кто?"])
async def test_one_request_with_courtesies_stays_one(shipped_engine: EmbeddedEngine, text: str) -> None:
    parse = await shipped_engine.parse(text)
    assert len(parse.requests) <= 1


@pytest.mark.parametrize(("text", "certain"), [("ok", False), ("?", False), ("wifi", False), ("спс ok thx", False),
                                               ("не работает интернет", True), ("my bill is wrong", True),
                                               ("ne rabotaet internet", True)])
async def test_language_is_certain_only_when_the_text_tells(shipped_engine: EmbeddedEngine, text: str,
                                                            certain: bool) -> None:
    assert (await shipped_engine.parse(text)).language_certain is certain


def test_calibration_counts_out_of_scope_examples_as_wrong_answers(shipped_engine: EmbeddedEngine) -> None:
    manifest = shipped_engine.list_versions()[-1].manifest
    assert OUT_OF_SCOPE in manifest["intents"]
    assert manifest["cross_validation"]["out_of_scope_not_answered"] >= 0.85
