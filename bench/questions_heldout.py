"""Held-out spoken questions for bench/llm_answer_bench.py, in the format of bench/questions.py.

Written apart from the conversation benchmark's questions, so that a system prompt or sampling
setting is chosen on questions it was not tuned to. None of them is an example exchange of a
prompt variant. Questions without answer words are conversational: they count as answered when
the reply is in English, not a list, and short.
"""

from __future__ import annotations

from bench.questions import Question

HELDOUT_QUESTIONS = (
    Question("What is the capital of Germany?", ("capital", "germany"), ("berlin",)),
    Question("How many legs does an insect have?", ("legs", "insect"), ("six", "6")),
    Question("What is the largest planet in our solar system?", ("largest", "planet"),
             ("jupiter",)),
    Question("What color is fresh grass?", ("color", "grass"), ("green",)),
    Question("How many days are in a year?", ("days", "year"),
             ("365", "three hundred sixty five", "three hundred and sixty five")),
    Question("Which animal says moo?", ("animal", "moo"), ("cow", "cattle")),
    Question("What is the freezing point of water in Celsius?", ("freezing", "water", "celsius"),
             ("zero", "0 degrees", "0 c")),
    Question("Who painted the Mona Lisa?", ("painted", "mona", "lisa"), ("leonardo", "vinci")),
    Question("What is the capital of Spain?", ("capital", "spain"), ("madrid",)),
    Question("How many continents are there?", ("continents",), ("seven", "7")),
    Question("What is three times four?", ("three", "times", "four"), ("twelve", "12")),
    Question("What is the largest mammal?", ("largest", "mammal"), ("whale",)),
    Question("Which planet is known as the red planet?", ("planet", "red"), ("mars",)),
    Question("What is the capital of the United Kingdom?", ("capital", "kingdom"), ("london",)),
    Question("How many seconds are in a minute?", ("seconds", "minute"), ("sixty", "60")),
    Question("What does a caterpillar turn into?", ("caterpillar", "turn"),
             ("butterfly", "butterflies", "moth")),
    Question("What is the hardest natural substance?", ("hardest", "substance"), ("diamond",)),
    Question("What language do people speak in Mexico?", ("language", "mexico"), ("spanish",)),
    Question("What is the opposite of up?", ("opposite", "up"), ("down",)),
    Question("Which bird is a symbol of peace?", ("bird", "peace"), ("dove",)),
    Question("What is nine plus one?", ("nine", "plus", "one"), ("ten", "10")),
    Question("What color do you get when you mix blue and yellow?", ("color", "blue", "yellow"),
             ("green",)),
    Question("How many strings does a standard guitar have?", ("strings", "guitar"),
             ("six", "6")),
    Question("What is the capital of Canada?", ("capital", "canada"), ("ottawa",)),
    Question("Which ocean lies between Europe and America?", ("ocean", "europe", "america"),
             ("atlantic",)),
    Question("What do you call a baby dog?", ("baby", "dog"), ("puppy", "pup")),
    Question("What is the main ingredient of guacamole?", ("ingredient", "guacamole"),
             ("avocado",)),
    Question("Who was the first person to walk on the moon?", ("first", "walk", "moon"),
             ("armstrong",)),
    Question("What is your name?", ("your", "name"), ("ava",)),
    Question("How are you today?", ("how", "today"), ()),
    Question("Can you tell me a joke?", ("tell", "joke"), ()),
    Question("Thank you, that was helpful.", ("thank", "helpful"), ()),
)
