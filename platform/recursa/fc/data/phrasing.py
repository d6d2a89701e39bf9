"""How generated queries say things: numbers in digits or words, units, lists, sentence frames.

Everything here is language, not catalogue: the generator decides what to mention and these
helpers decide how it sounds. Each helper draws its choices from the `random.Random` it is given,
so a seeded stream always produces the same wording.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

# Unit key -> (singular, plural) spellings. Spellings starting with "%" or "°" attach to the number.
UNITS: dict[str, tuple[tuple[str, str], ...]] = {
    "day": (("day", "days"),),
    "night": (("night", "nights"),),
    "week": (("week", "weeks"),),
    "month": (("month", "months"),),
    "year": (("year", "years"),),
    "hour": (("hour", "hours"), ("hr", "hrs")),
    "minute": (("minute", "minutes"), ("min", "min")),
    "second": (("second", "seconds"), ("s", "s")),
    "km": (("km", "km"), ("kilometer", "kilometers"), ("kilometre", "kilometres")),
    "m": (("m", "m"), ("meter", "meters"), ("metre", "metres")),
    "cm": (("cm", "cm"), ("centimeter", "centimeters")),
    "mile": (("mile", "miles"), ("mi", "mi")),
    "sqft": (("square foot", "square feet"), ("sq ft", "sq ft")),
    "kg": (("kg", "kg"), ("kilogram", "kilograms"), ("kilo", "kilos")),
    "g": (("g", "g"), ("gram", "grams")),
    "liter": (("liter", "liters"), ("L", "L")),
    "mol": (("mole", "moles"), ("mol", "mol")),
    "molar": (("mol/L", "mol/L"), ("molar", "molar")),
    "kelvin": (("kelvin", "kelvin"), ("K", "K")),
    "celsius": (("°C", "°C"), ("degree Celsius", "degrees Celsius")),
    "degree": (("degree", "degrees"), ("°", "°")),
    "mps": (("m/s", "m/s"), ("meter per second", "meters per second")),
    "mps2": (("m/s^2", "m/s^2"), ("meter per second squared", "meters per second squared")),
    "volt": (("volt", "volts"), ("V", "V")),
    "ohm": (("ohm", "ohms"),),
    "hertz": (("Hz", "Hz"), ("hertz", "hertz")),
    "watt": (("watt", "watts"), ("W", "W")),
    "kw": (("kW", "kW"), ("kilowatt", "kilowatts")),
    "kwh": (("kWh", "kWh"), ("kilowatt-hour", "kilowatt-hours")),
    "l100km": (("L/100km", "L/100km"), ("liters per 100 km", "liters per 100 km")),
    "dollar": (("dollar", "dollars"), ("USD", "USD")),
    "percent": (("%", "%"), ("percent", "percent")),
    "calorie": (("calorie", "calories"), ("kcal", "kcal")),
    "person": (("person", "people"),),
    "guest": (("guest", "guests"),),
    "passenger": (("passenger", "passengers"), ("traveler", "travelers")),
    "serving": (("serving", "servings"), ("portion", "portions")),
    "result": (("result", "results"),),
    "game": (("game", "games"), ("match", "matches")),
    "set": (("set", "sets"),),
    "rep": (("rep", "reps"), ("repetition", "repetitions")),
    "bedroom": (("bedroom", "bedrooms"), ("bed", "beds")),
    "star": (("star", "stars"),),
    "die": (("die", "dice"),),
    "side": (("side", "sides"),),
    "question": (("question", "questions"),),
    "sentence": (("sentence", "sentences"),),
    "pass": (("pass", "passes"), ("flyover", "flyovers")),
    "player": (("player", "players"),),
}

# Sentence frames. Repeated empty entries make the plain form the common case.
COMMAND_OPENERS = ("", "", "", "please ", "go ahead and ", "I need you to ", "I'd like you to ",
                   "I want you to ", "kindly ")
SELF_OPENERS = ("I need to ", "I want to ", "I'd like to ", "help me ", "I'm trying to ", "I have to ")
QUESTION_OPENERS = ("can you ", "could you ", "could you please ", "would you ", "can you please ",
                    "would you be able to ", "are you able to ", "is it possible to ", "any chance you could ",
                    "do you think you could ", "I was wondering if you could ", "could you kindly ")
NOUN_OPENERS = ("I need ", "I'd like ", "show me ", "give me ", "get me ", "I'm looking for ",
                "let me know ", "find me ")
NOUN_QUESTION_OPENERS = ("can I get ", "could you show me ", "can you give me ")
DEFINITE_QUESTION_OPENERS = ("what's ", "what is ", "do you know ", "can you tell me ")
GREETINGS = ("Hi! ", "Hello! ", "Hey! ", "Hi there. ", "Good morning! ", "Quick question: ", "Okay. ")
LEAD_INS = ("Hey, ", "Hi, ", "Hey there, ", "So, ", "Okay, so ", "Hello, ", "Right, ")  # lower case follows
CLOSINGS = ("", "", "", "", "", "", "", " Thanks!", " Thank you.", " Thanks in advance.", " Cheers!",
            " Appreciate it.", " No rush.", " It's for work.", " Let me know what you find.",
            " Whenever you get a chance.", " That would help a lot.")
# Typed in a hurry: no capital, little or no punctuation.
CASUAL_RATE = 0.12
CASUAL_OPENINGS = ("", "", "", "hey ", "hi ", "ok so ")
CASUAL_CLOSINGS = ("", "", "", " thanks", " thx", " pls", " ty")
# A sentence of context some requests open with; domains add their own.
CONTEXTS = ("I'm sorting out a few things today.", "Got a quick task for you.",
            "This is for a project I'm working on.", "I'm trying to get organised.",
            "My manager asked me to look into this.", "I've been meaning to do this for a while.",
            "Sorry if this is a basic question.", "Here's what I need.", "I'm helping a friend with something.")
POLITE_TAILS = (", please", " please", " for me")
CHAIN_CONNECTORS = (", and ", ", then ", " and then ", ". Then ", ". Also, ", ". After that, ",
                    "; also ", ", and also ")
GROUP_CONJUNCTIONS = ("and", "and also", "as well as")
_ME = re.compile(r"\bme\b")


def number_to_words(n: int) -> str:
    """English words for an integer below one million: 42 -> "forty-two"."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, rest = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[rest]}" if rest else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        return f"{number_to_words(thousands)} thousand" + (f" {number_to_words(rest)}" if rest else "")
    raise ValueError(f"no words for {n}")


_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                       "nine": "ninth", "twelve": "twelfth"}


def ordinal(n: int) -> str:
    """An ordinal in digits: 1 -> "1st", 12 -> "12th", 22 -> "22nd"."""
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def ordinal_words(n: int) -> str:
    """An ordinal in words: 1 -> "first", 20 -> "twentieth", 31 -> "thirty-first"."""
    words = number_to_words(n)
    cut = max(words.rfind("-"), words.rfind(" ")) + 1
    head, last = words[:cut], words[cut:]
    if last in _IRREGULAR_ORDINALS:
        return head + _IRREGULAR_ORDINALS[last]
    return head + (last[:-1] + "ieth" if last.endswith("y") else last + "th")


def float_digits(value: float) -> str:
    """A float written with no trailing zeros: 3.50 -> "3.5", 3.0 -> "3"."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def number_forms(value: int | float) -> tuple[str, ...]:
    """Every way a query may write `value`; the first is plain digits.

    Integers add a thousands-separated form from 10,000 and words up to 100 (and for round
    hundreds below 10,000); floats with a half add "two and a half"; whole floats read like ints.
    """
    if isinstance(value, float):
        if value.is_integer():
            return (float_digits(value), *number_forms(int(value))[1:])
        whole, fraction = divmod(abs(value), 1)
        if fraction == 0.5 and 1 <= whole < 100 and value > 0:
            return (float_digits(value), f"{number_to_words(int(whole))} and a half")
        return (float_digits(value),)
    forms = [str(value)]
    if abs(value) >= 10_000:
        forms.append(f"{value:,}")
    if abs(value) <= 100 or (abs(value) < 10_000 and value % 100 == 0):
        forms.append(number_to_words(value))
    return tuple(forms)


def say_number(rng: random.Random, value: int | float, words: bool = True) -> str:
    """`value` as a query would write it: mostly digits, sometimes words or separators."""
    forms = number_forms(value)
    if not words or len(forms) == 1 or rng.random() < 0.7:
        return forms[0]
    return rng.choice(forms[1:])


def say_quantity(rng: random.Random, value: int | float, unit: str | None, words: bool = True) -> str:
    """A number with one spelling of its unit ("5 km", "five kilometers", "15%"), or alone."""
    if unit is None:
        return say_number(rng, value, words)
    one, many = rng.choice(UNITS[unit])
    spelling = one if value == 1 else many
    if spelling[0] in "%°":
        return number_forms(value)[0] + spelling
    return f"{say_number(rng, value, words)} {spelling}"


def join_list(rng: random.Random, items: Sequence[str], conjunction: str = "and") -> str:
    """Items as an English list: "a", "a and b", "a, b and c" (sometimes with an Oxford comma)."""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conjunction} {items[1]}"
    comma = "," if rng.random() < 0.3 else ""
    return f"{', '.join(items[:-1])}{comma} {conjunction} {items[-1]}"


def join_groups(rng: random.Random, groups: Sequence[str]) -> str:
    """Per-call argument groups of a parallel request: "for Paris and also for Rome"."""
    return join_list(rng, groups, rng.choice(GROUP_CONJUNCTIONS))


def capitalize(text: str) -> str:
    """`text` with its first character upper-cased (the rest untouched)."""
    return text[:1].upper() + text[1:]


def _frame(rng: random.Random, phrase: str, noun: bool) -> tuple[str, bool]:
    """An opener for a verb or noun phrase, and whether the sentence is a question."""
    if not noun:
        roll = rng.random()
        if roll < 0.45:
            return rng.choice(COMMAND_OPENERS), False
        if roll < 0.57 and not _ME.search(phrase):  # not "help me remind me to ..."
            return rng.choice(SELF_OPENERS), False
        return rng.choice(QUESTION_OPENERS), True
    roll = rng.random()
    if roll < 0.3 and phrase.startswith("the "):
        return rng.choice(DEFINITE_QUESTION_OPENERS), True
    if roll < 0.45:
        return rng.choice(NOUN_QUESTION_OPENERS), True
    return rng.choice(NOUN_OPENERS), False


def _framed(rng: random.Random, text: str, end: str, context: str) -> str:
    """A request `text` (lower-case start) finished with `end` and dressed: typed in a hurry, or
    capitalised with an optional greeting or lead-in, the `context` sentence and a closing."""
    opening = f"{context} " if context else ""
    if rng.random() < CASUAL_RATE:
        end = end if end == "?" and rng.random() < 0.4 else ""
        return rng.choice(CASUAL_OPENINGS) + opening + text + end + rng.choice(CASUAL_CLOSINGS)
    roll = rng.random()
    if roll < 0.1 and not context:
        return rng.choice(LEAD_INS) + text + end + rng.choice(CLOSINGS)
    greeting = rng.choice(GREETINGS) if roll < 0.3 else ""
    return greeting + opening + capitalize(text) + end + rng.choice(CLOSINGS)


def request(rng: random.Random, phrase: str, body: str, *, noun: bool = False, front: str = "",
            context: str = "") -> str:
    """One request around a verb phrase ("get the forecast") or a noun phrase ("the forecast").

    `body` holds the argument clauses; `front`, when given, is a clause moved before the rest
    ("For Paris, can you get the forecast?"); `context`, a sentence said first ("I'm planning a
    trip."). Greetings, lead-ins, polite tails, closings and a casual style vary the frame.
    """
    opener, question = _frame(rng, phrase, noun)
    core = opener + phrase + (f" {body}" if body else "")
    if not question and rng.random() < 0.12:
        core += rng.choice(POLITE_TAILS)
    terse = noun and not front and not opener and rng.random() < 0.3
    end = "" if terse else ("?" if question else ".")
    return _framed(rng, f"{front}, {core}" if front else core, end, context)


def chained_request(rng: random.Random, phrases: Sequence[str], context: str = "") -> str:
    """Several verb phrases in one request: one question or a chain of commands."""
    if rng.random() < 0.35:
        return _framed(rng, rng.choice(QUESTION_OPENERS) + join_list(rng, phrases), "?", context)
    text = rng.choice(COMMAND_OPENERS) + phrases[0]
    for phrase in phrases[1:]:
        text += rng.choice(CHAIN_CONNECTORS) + phrase
    return _framed(rng, text, ".", context)


def dressed(rng: random.Random, sentence: str, context: str = "") -> str:
    """A complete sentence ("Tell me a joke.") framed like a request."""
    first_word = sentence.split(" ", 1)[0]
    start = sentence[0] if first_word == "I" or first_word.startswith("I'") else sentence[0].lower()
    return _framed(rng, start + sentence[1:-1], sentence[-1], context)


def third_person(verb: str) -> str:
    """The third-person singular of an English verb: "get" -> "gets", "apply" -> "applies"."""
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def describe(description: str, variant: int) -> str:
    """One of three wordings of an imperative description ("Get X" / "Gets X" / "Use this to get X")."""
    if variant == 1:
        first, _, rest = description.partition(" ")
        return f"{third_person(first)} {rest}."
    if variant == 2:
        return f"Use this function to {description[0].lower()}{description[1:]}."
    return description + "."
