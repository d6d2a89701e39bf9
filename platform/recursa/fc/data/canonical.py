"""Canonical forms of derived arguments: passed in one format, worded differently by the query.

A user says "March 3rd, 2025", "half past seven in the evening", "Austin, Texas" or "euros"; the
function wants "2025-03-03", "19:30", "Austin, TX" or "EUR". Each kind here draws a canonical
value, lists the everyday ways to say it, and knows the value's format. No way of saying a value
contains the value itself, so a model has to produce it rather than copy it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache

from recursa.fc.data import phrasing


@dataclass(frozen=True)
class Kind:
    """A canonical format: how to draw a value, the ways a query says one, and the values' pattern."""

    draw: Callable[[random.Random], str]
    forms: Callable[[str], Sequence[str]]
    pattern: re.Pattern[str]

    def say(self, rng: random.Random, value: str) -> str:
        """One of the ways to say `value`."""
        return rng.choice(self.forms(value))


# ---------------------------------------------------------------------------------------------
# Code tables: canonical code -> the ways a query names it (the first is the plain name).

US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}

US_CITIES: tuple[tuple[str, str], ...] = (
    ("New York", "NY"), ("Buffalo", "NY"), ("Albany", "NY"), ("Los Angeles", "CA"),
    ("San Francisco", "CA"), ("San Diego", "CA"), ("Sacramento", "CA"), ("Palo Alto", "CA"),
    ("Portland", "OR"), ("Eugene", "OR"), ("Seattle", "WA"), ("Spokane", "WA"), ("Boise", "ID"),
    ("Salt Lake City", "UT"), ("Las Vegas", "NV"), ("Reno", "NV"), ("Phoenix", "AZ"),
    ("Tucson", "AZ"), ("Santa Fe", "NM"), ("Albuquerque", "NM"), ("Denver", "CO"),
    ("Colorado Springs", "CO"), ("Austin", "TX"), ("Dallas", "TX"), ("Houston", "TX"),
    ("San Antonio", "TX"), ("El Paso", "TX"), ("Fort Worth", "TX"), ("Oklahoma City", "OK"),
    ("Tulsa", "OK"), ("Kansas City", "MO"), ("St. Louis", "MO"), ("Omaha", "NE"),
    ("Minneapolis", "MN"), ("Des Moines", "IA"), ("Chicago", "IL"), ("Springfield", "IL"),
    ("Milwaukee", "WI"), ("Madison", "WI"), ("Detroit", "MI"), ("Ann Arbor", "MI"),
    ("Grand Rapids", "MI"), ("Indianapolis", "IN"), ("Columbus", "OH"), ("Cleveland", "OH"),
    ("Cincinnati", "OH"), ("Pittsburgh", "PA"), ("Philadelphia", "PA"), ("Baltimore", "MD"),
    ("Richmond", "VA"), ("Virginia Beach", "VA"), ("Raleigh", "NC"), ("Charlotte", "NC"),
    ("Charleston", "SC"), ("Charleston", "WV"), ("Atlanta", "GA"), ("Savannah", "GA"),
    ("Nashville", "TN"), ("Memphis", "TN"), ("New Orleans", "LA"), ("Baton Rouge", "LA"),
    ("Miami", "FL"), ("Orlando", "FL"), ("Tampa", "FL"), ("Boston", "MA"), ("Cambridge", "MA"),
    ("Providence", "RI"), ("Hartford", "CT"), ("Burlington", "VT"), ("Portland", "ME"),
    ("Anchorage", "AK"), ("Honolulu", "HI"), ("Louisville", "KY"), ("Birmingham", "AL"),
    ("Little Rock", "AR"), ("Jackson", "MS"), ("Cheyenne", "WY"), ("Billings", "MT"),
    ("Fargo", "ND"), ("Sioux Falls", "SD"), ("Wilmington", "DE"), ("Jersey City", "NJ"),
    ("Newark", "NJ"), ("Manchester", "NH"),
)

COUNTRIES: dict[str, tuple[str, ...]] = {
    "FR": ("France",), "IT": ("Italy",), "DE": ("Germany",), "ES": ("Spain",), "PT": ("Portugal",),
    "IE": ("Ireland",), "NL": ("the Netherlands", "Holland"), "BE": ("Belgium",), "AT": ("Austria",),
    "CH": ("Switzerland",), "PL": ("Poland",), "HU": ("Hungary",), "GR": ("Greece",),
    "TR": ("Turkey", "Türkiye"), "EG": ("Egypt",), "KE": ("Kenya",), "NG": ("Nigeria",),
    "ZA": ("South Africa",), "MA": ("Morocco",), "IN": ("India",), "TH": ("Thailand",),
    "VN": ("Vietnam",), "ID": ("Indonesia",), "PH": ("the Philippines",), "JP": ("Japan",),
    "KR": ("South Korea", "Korea"), "CN": ("China",), "AU": ("Australia",), "NZ": ("New Zealand",),
    "CA": ("Canada",), "US": ("the United States", "the U.S.", "America"), "MX": ("Mexico",),
    "BR": ("Brazil",), "AR": ("Argentina",), "CL": ("Chile",), "PE": ("Peru",), "CO": ("Colombia",),
    "NO": ("Norway",), "SE": ("Sweden",), "FI": ("Finland",), "DK": ("Denmark",), "IS": ("Iceland",),
    "EE": ("Estonia",), "CZ": ("the Czech Republic", "Czechia"), "HR": ("Croatia",),
    "SG": ("Singapore",), "GB": ("the United Kingdom", "the UK", "Britain", "Great Britain"),
    "QA": ("Qatar",), "AE": ("the United Arab Emirates", "the Emirates"), "SA": ("Saudi Arabia",),
    "IL": ("Israel",), "UA": ("Ukraine",), "RO": ("Romania",), "MY": ("Malaysia",), "TW": ("Taiwan",),
    "LU": ("Luxembourg",), "LT": ("Lithuania",), "SI": ("Slovenia",), "UY": ("Uruguay",),
}

CURRENCIES: dict[str, tuple[str, ...]] = {
    "USD": ("US dollars", "U.S. dollars", "American dollars"), "EUR": ("euros",),
    "GBP": ("British pounds", "pounds sterling", "pounds"), "JPY": ("Japanese yen", "yen"),
    "CHF": ("Swiss francs",), "CAD": ("Canadian dollars",), "AUD": ("Australian dollars", "Aussie dollars"),
    "NZD": ("New Zealand dollars",), "CNY": ("Chinese yuan", "yuan", "renminbi"),
    "INR": ("Indian rupees", "rupees"), "BRL": ("Brazilian reais", "reais"), "MXN": ("Mexican pesos",),
    "SEK": ("Swedish kronor", "Swedish crowns"), "NOK": ("Norwegian kroner",), "DKK": ("Danish kroner",),
    "PLN": ("Polish zloty", "zloty"), "ZAR": ("South African rand", "rand"), "SGD": ("Singapore dollars",),
    "HKD": ("Hong Kong dollars",), "KRW": ("South Korean won", "Korean won"), "TRY": ("Turkish lira", "lira"),
    "THB": ("Thai baht", "baht"), "AED": ("UAE dirhams", "dirhams"), "ILS": ("Israeli shekels", "shekels"),
    "CZK": ("Czech koruna",), "HUF": ("Hungarian forints", "forints"),
}

LANGUAGES: dict[str, tuple[str, ...]] = {
    "en": ("English",), "es": ("Spanish",), "fr": ("French",), "de": ("German",), "it": ("Italian",),
    "pt": ("Portuguese",), "nl": ("Dutch",), "sv": ("Swedish",), "no": ("Norwegian",), "da": ("Danish",),
    "fi": ("Finnish",), "pl": ("Polish",), "cs": ("Czech",), "el": ("Greek",), "tr": ("Turkish",),
    "ru": ("Russian",), "uk": ("Ukrainian",), "ar": ("Arabic",), "he": ("Hebrew",), "hi": ("Hindi",),
    "bn": ("Bengali",), "zh": ("Chinese", "Mandarin"), "ja": ("Japanese",), "ko": ("Korean",),
    "vi": ("Vietnamese",), "th": ("Thai",), "id": ("Indonesian",), "sw": ("Swahili",),
    "hu": ("Hungarian",), "ro": ("Romanian",),
}

SLUG_WORDS: tuple[str, ...] = (
    "team", "notes", "launch", "design", "mobile", "billing", "search", "weekly", "sync", "support",
    "analytics", "ops", "research", "growth", "web", "app", "platform", "portal", "tracker",
    "dashboard", "planner", "garden", "budget", "photo", "recipe", "data", "pipeline", "marketing",
    "onboarding", "feedback", "travel", "book", "club", "game", "night", "project", "alpha", "beta",
    "home", "lab", "music", "study", "group", "events", "hiring", "infra", "payments", "website",
)


# ---------------------------------------------------------------------------------------------
# Dates and times

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DATE_FORMS = (
    "{month} {day}, {year}", "{month} {nth}, {year}", "{day} {month} {year}", "the {nth} of {month} {year}",
    "{mon} {day}, {year}", "{weekday}, {month} {day}, {year}", "{month} {nth_words}, {year}",
    "{m}/{day}/{year}", "{dd}.{mm}.{year}", "{year}/{mm}/{dd}",
)
_FIRST_DAY = date(2024, 1, 1).toordinal()
_DAYS = date(2027, 1, 1).toordinal() - _FIRST_DAY  # dates fall in 2024-2026
_HOURS = tuple(range(6, 23))
_MINUTES = (0, 0, 0, 0, 15, 30, 30, 45, 5, 10, 20, 40, 50)


def _draw_date(rng: random.Random) -> str:
    return date.fromordinal(_FIRST_DAY + rng.randrange(_DAYS)).isoformat()


@cache
def _date_forms(value: str) -> tuple[str, ...]:
    """Ways to write a date: "March 14, 2025", "the 14th of March 2025", "3/14/2025" (US order), ..."""
    day = date.fromisoformat(value)
    month = MONTHS[day.month - 1]
    fields = dict(month=month, mon=month[:3], day=day.day, nth=phrasing.ordinal(day.day),
                  nth_words=phrasing.ordinal_words(day.day), weekday=WEEKDAYS[day.weekday()], year=day.year,
                  m=day.month, mm=f"{day.month:02d}", dd=f"{day.day:02d}")
    return tuple(form.format(**fields) for form in _DATE_FORMS)


def _draw_time(rng: random.Random) -> str:
    return f"{rng.choice(_HOURS):02d}:{rng.choice(_MINUTES):02d}"


def _part_of_day(hour: int) -> str:
    if hour < 12:
        return "in the morning"
    if hour < 17:
        return "in the afternoon"
    return "in the evening" if hour < 21 else "at night"


def _minutes_past(minute: int, hour12: int) -> str:
    """Minutes in words around the hour: "quarter past seven", "half past seven", "ten to eight"."""
    named = {15: "quarter", 30: "half", 45: "quarter"}
    if minute <= 30:
        return f"{named.get(minute) or phrasing.number_to_words(minute)} past {phrasing.number_to_words(hour12)}"
    following = phrasing.number_to_words(hour12 % 12 + 1)
    return f"{named.get(minute) or phrasing.number_to_words(60 - minute)} to {following}"


@cache
def _time_forms(value: str) -> tuple[str, ...]:
    """Ways to say an "HH:MM" time on a 12-hour clock, in digits and in words, that do not contain it."""
    hour, minute = int(value[:2]), int(value[3:])
    hour12, part = hour % 12 or 12, _part_of_day(hour)
    suffix = "am" if hour < 12 else "pm"
    clock = f"{hour12}:{minute:02d}"
    forms = [f"{clock} {suffix}", f"{clock}{suffix}", f"{clock} {suffix.upper()}", f"{clock} {suffix[0]}.m.",
             f"{clock} {part}"]
    if minute == 0:
        forms += [f"{hour12} {suffix}", f"{hour12}{suffix}", f"{hour12} {suffix.upper()}",
                  f"{hour12} o'clock {part}", f"{phrasing.number_to_words(hour12)} {part}"]
        forms += ["noon", "midday", "12 noon"] if hour == 12 else []
    else:
        forms.append(f"{_minutes_past(minute, hour12)} {part}")
        if minute >= 10:
            forms.append(f"{phrasing.number_to_words(hour12)} {phrasing.number_to_words(minute)} {suffix}")
    return tuple(form for form in forms if value not in form)


# ---------------------------------------------------------------------------------------------
# Places, codes and names

def _draw_city_state(rng: random.Random) -> str:
    city, state = rng.choice(US_CITIES)
    return f"{city}, {state}"


def _city_state_forms(value: str) -> tuple[str, ...]:
    """A "City, ST" location with its state named: "Austin, Texas" or "Austin in Texas"."""
    city, state = value.rsplit(", ", 1)
    return f"{city}, {US_STATES[state]}", f"{city} in {US_STATES[state]}"


def _draw_slug(rng: random.Random) -> str:
    """Two or three distinct words joined by hyphens."""
    count = 3 if rng.random() < 0.3 else 2
    words: list[str] = []
    while len(words) < count:
        word = rng.choice(SLUG_WORDS)
        if word not in words:
            words.append(word)
    return "-".join(words)


def _slug_forms(value: str) -> tuple[str, ...]:
    """A slug as words: "budget-tracker" as "Budget Tracker", "Budget tracker" or "budget tracker"."""
    words = value.split("-")
    return " ".join(w.capitalize() for w in words), phrasing.capitalize(" ".join(words)), " ".join(words)


def _table_kind(table: dict[str, tuple[str, ...]], pattern: str) -> Kind:
    """A kind whose values are the keys of `table`, said as one of their names."""
    codes = tuple(table)
    return Kind(draw=lambda rng: rng.choice(codes), forms=table.__getitem__, pattern=re.compile(pattern))


KINDS: dict[str, Kind] = {
    "date": Kind(_draw_date, _date_forms, re.compile(r"\d{4}-\d{2}-\d{2}")),
    "time": Kind(_draw_time, _time_forms, re.compile(r"\d{2}:\d{2}")),
    "state": _table_kind({code: (name,) for code, name in US_STATES.items()}, r"[A-Z]{2}"),
    "city_state": Kind(_draw_city_state, _city_state_forms, re.compile(r"[A-Z][\w .'-]+, [A-Z]{2}")),
    "country_code": _table_kind(COUNTRIES, r"[A-Z]{2}"),
    "currency_code": _table_kind(CURRENCIES, r"[A-Z]{3}"),
    "language_code": _table_kind(LANGUAGES, r"[a-z]{2}"),
    "slug": Kind(_draw_slug, _slug_forms, re.compile(r"[a-z]+(?:-[a-z]+)+")),
}


def written_in(text: str, value: str) -> bool:
    """Whether `value` occurs in `text` as a word of its own (case-sensitive), not inside a longer word."""
    start = text.find(value)
    while start >= 0:
        end = start + len(value)
        if not (start and text[start - 1].isalnum()) and not (end < len(text) and text[end].isalnum()):
            return True
        start = text.find(value, start + 1)
    return False
