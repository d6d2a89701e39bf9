"""Sentences around a request rather than values in it.

A domain's context sentences may open its requests ("I'm planning a trip."); off-topic requests
are ones no catalogue function serves, for irrelevance examples. Apart from the pools because
they are whole sentences the generator says, never values it passes to a function.
"""

from __future__ import annotations

# Requests no catalogue function can serve.
OFF_TOPIC: tuple[str, ...] = (
    "Tell me a joke about penguins.",
    "Write a short poem about the sea at night.",
    "What do you think is the meaning of life?",
    "Can you explain why the sky is blue?",
    "Give me some tips for a job interview.",
    "How do I apologize to a friend I upset?",
    "Summarize the plot of a typical detective novel.",
    "What's your favorite color?",
    "Help me come up with a name for my podcast about gardening.",
    "Explain the difference between a virus and a bacterium in simple words.",
    "Write a limerick about a cat who loves lasagna.",
    "How should I prepare mentally for a marathon?",
    "Is it rude to recline your seat on a plane?",
    "Describe the smell of rain.",
    "What are some good icebreaker questions for a party?",
    "Can you proofread my thoughts on remote work? I think it is great.",
    "Why do people enjoy scary movies?",
    "Tell me an interesting fact about octopuses.",
    "How do I stay motivated when learning a new language?",
    "Write a thank-you note for my neighbor who watered my plants.",
    "What's the best way to fold a fitted sheet?",
    "Brainstorm three themes for a birthday party.",
    "Explain recursion to a ten-year-old.",
    "Should I learn the guitar or the piano first?",
    "Compose a haiku about autumn leaves.",
    "What would happen if the moon disappeared?",
    "Give me a pep talk before my exam.",
    "How do I tell my manager I need a break?",
    "Describe a perfect lazy Sunday.",
    "Which is better, cats or dogs? Just give me your opinion.",
)

# A sentence of context a request in the domain may open with (no numbers, no argument values).
CONTEXTS: dict[str, tuple[str, ...]] = {
    "weather": ("I'm heading out later.", "We're planning a picnic."),
    "finance": ("I'm reviewing my portfolio.", "I'm thinking about investing."),
    "banking": ("I'm trying to get my finances in order.", "Payday was yesterday."),
    "travel": ("I'm planning a trip.", "My vacation is coming up."),
    "math": ("I'm doing my homework.", "I'm checking my answers."),
    "geometry": ("I'm working on a geometry assignment.",),
    "physics": ("I'm studying for my physics exam.",),
    "chemistry": ("I'm in the middle of a lab report.",),
    "cooking": ("I'm cooking for friends tonight.", "I'm trying to eat healthier."),
    "sports": ("I missed the game last night.", "I'm a huge sports fan."),
    "music": ("I'm in the mood for some music.",),
    "movies": ("It's movie night.",),
    "shopping": ("I'm doing some online shopping.",),
    "shipping": ("I'm sending a parcel.", "My package hasn't arrived yet."),
    "calendar": ("My week is getting busy.",),
    "messaging": ("I need to get in touch with someone.",),
    "maps": ("I'm new in town.",),
    "health": ("I haven't been feeling great.",),
    "fitness": ("I'm getting back into training.",),
    "real_estate": ("We're thinking about moving.",),
    "cars": ("My car needs some attention.",),
    "education": ("I'm going back to school.",),
    "history": ("I'm reading up on history.",),
    "astronomy": ("I love stargazing.",),
    "language": ("I'm learning languages.",),
    "games": ("I've got some free time tonight.",),
    "legal": ("I have a legal question.",),
    "energy": ("Our electricity bill was high last month.",),
    "hr": ("I'm sorting out some staff matters.",),
    "smart_home": ("I'm about to leave the house.",),
    "dining": ("We're going out tonight.",),
    "library": ("I'm looking for something to read.",),
    "news": ("I've been out of the loop.",),
    "social": ("I'm managing our social media.",),
    "dev": ("I'm working on our codebase.",),
}
