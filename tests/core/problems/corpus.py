"""A fixed RU/EN corpus of what customers wrote that a bot would not understand, by topic (the tests' truth)."""

CORPUS: dict[str, list[str]] = {
    "router_ru": [
        "роутер мигает красным светом что делать",
        "у меня роутер мигает красным",
        "роутер горит красная лампочка",
        "красный индикатор на роутере мигает",
    ],
    "router_en": ["my router is blinking red", "router light blinking red what does it mean"],
    "tv_ru": ["не показывает телевидение каналы пропали", "пропали каналы на телевизоре", "каналы тв не показывают"],
    "tv_en": ["tv channels disappeared", "all tv channels are gone"],
    "sim_ru": ["как восстановить сим карту", "потерял сим карту как восстановить", "восстановление сим-карты"],
    "sim_en": ["lost my sim card how to replace it", "how do I replace a lost sim card"],
    "noise": ["Когда приедет мастер 12 числа?", "what is your street address"],
}
