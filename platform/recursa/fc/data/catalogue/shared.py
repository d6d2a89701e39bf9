"""Parameters many domains share (a city, a date, a currency, a limit...).

Written once so that every function asks for a city or a date the same way, with the same name,
description and clauses; a domain module adapts one with `.opt()` or `.named()`.
"""

from __future__ import annotations

from recursa.fc.data import canonical
from recursa.fc.data.dsl import choice, derived, integer, number, text, year

CITY = text("city", "Name of the city", "place", "in {v}|for {v}")
COUNTRY_CODE = derived("country", "ISO 3166-1 alpha-2 country code, e.g. FR", "country_code", "in {v}|for {v}")
DATE = derived("date", "Date in YYYY-MM-DD format", "date", "on {v}|for {v}")
TIME = derived("time", "Time of day in 24-hour HH:MM format", "time", "at {v}")
# The same formats said exactly as they are passed ("on 2025-03-14", "at 19:30").
DATE_VERBATIM = text("date", "Date in YYYY-MM-DD format", "date", "on {v}|for {v}")
TIME_VERBATIM = text("time", "Time of day in 24-hour HH:MM format", "time", "at {v}")
STATE = derived("state", "Two-letter US state code, e.g. CA", "state", "in {v}|for {v}")
US_LOCATION = derived("location", "City and state as 'City, ST', e.g. 'Austin, TX'", "city_state",
                      "in {v}|near {v}|around {v}")
LANGUAGE_CODE = derived("language", "ISO 639-1 language code, e.g. fr", "language_code", "in {v}")
PERSON = text("name", "Full name of the person", "person", "for {v}")
EMAIL = text("email", "Email address", "email", "at {v}")
LIMIT = integer("limit", "Maximum number of results to return", 2, 20,
                "limited to {v}|showing at most {v}|returning up to {v}", unit="result")
TEMP_UNIT = choice("units", "Temperature unit", {"celsius": "Celsius|°C|metric",
                                                 "fahrenheit": "Fahrenheit|°F|imperial"},
                   "in {v}|with temperatures in {v}")
TICKER = text("ticker", "Stock ticker symbol, e.g. AAPL", "ticker",
              "of {v}|for {v}|for ticker {v}|for {v} shares")
AIRPORT = text("origin", "IATA code of the departure airport", "airport", "from {v}|departing {v}")
ORDER_ID = text("order_id", "Identifier of the order", "order_id", "for order {v}|on order {v}")
CURRENCY = derived("currency", "ISO 4217 currency code, e.g. EUR", "currency_code", "in {v}|priced in {v}")
TEAM = text("team", "Name of the team", "team", "for {v}|of {v}")
SEASON = year("season", "Season start year", 2015, 2024, "for the {v} season|in the {v} season")
ARTIST = text("artist", "Name of the artist or band", "artist", "by {v}")
MOVIE = text("title", "Title of the movie", "movie", 'for "{v}"|for the movie {v}')
ADDRESS = text("address", "Street address", "address", "at {v}")
ZIP = text("zip_code", "Postal code", "zip_code", "near {v}|around zip code {v}")
REPO = text("repo", "Repository as owner/name", "repo", "in {v}|for {v}|on {v}")
WEIGHT_KG = number("weight_kg", "Weight in kilograms", 0.5, 30, "weighing {v}|of {v}", unit="kg")
LENGTH_CM = number("length", "Length in centimeters", 5, 120, "{v} long", unit="cm", decimals=0)
WIDTH_CM = number("width", "Width in centimeters", 5, 80, "{v} wide", unit="cm", decimals=0)
HEIGHT_CM = number("height", "Height in centimeters", 2, 80, "{v} high|{v} tall", unit="cm", decimals=0)
CARRIER = choice("carrier", "Shipping carrier", {"ups": "UPS", "fedex": "FedEx", "dhl": "DHL",
                                                 "usps": "USPS"}, "with {v}|via {v}|through {v}")
DURATION_MIN = integer("duration_minutes", "Duration in minutes", 15, 180, "lasting {v}|for {v}",
                       unit="minute", step=15)
EMPLOYEE = text("employee_id", "Employee identifier such as EMP-12345", "employee_id",
                "for employee {v}|for {v}")
DIET = choice("diet", "Dietary restriction", {"vegetarian": "", "vegan": "",
                                              "gluten_free": "gluten-free", "keto": "low-carb",
                                              "dairy_free": "dairy-free"},
              "that are {v}|suitable for a {v} diet")
LANGUAGE = choice("target_language", "ISO 639-1 code of the target language",
                  {code: "|".join(canonical.LANGUAGES[code])
                   for code in ("es", "fr", "de", "it", "ja", "pt", "zh", "ko", "ar", "nl", "en")}, "into {v}|to {v}")
SPECIES = choice("species", "Animal species", {"dog": "puppy", "cat": "kitten"}, "for a {v}")
DEPARTMENT = choice("department", "Company department",
                    {"engineering": "Engineering", "sales": "Sales", "marketing": "Marketing",
                     "finance": "Finance", "hr": "Human Resources", "legal": "Legal",
                     "support": "Customer Support"}, "in {v}|for the {v} team")
DIFFICULTY = choice("level", "Difficulty level", {"beginner": "introductory|easy",
                                                   "intermediate": "mid-level",
                                                   "advanced": "expert|hard"},
                    "at the {v} level|for {v} learners")
PLATFORM = choice("platform", "Gaming platform", {"pc": "PC", "playstation": "PS5",
                                                   "xbox": "Xbox", "switch": "Nintendo Switch",
                                                   "mobile": "phone"}, "on {v}|for {v}")
