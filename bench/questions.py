"""Spoken questions with known answers, shared by the hearing and conversation benchmarks.

Each question names the key words the transcript must keep (hearing) and the answer words of
which any one in the reply counts as a correct answer (conversation).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    key_words: tuple[str, ...]
    answers: tuple[str, ...]


QUESTIONS = (
    Question("What is the capital of France?", ("capital", "france"), ("paris",)),
    Question("How many legs does a spider have?", ("legs", "spider"), ("eight", "8")),
    Question("Which planet is closest to the sun?", ("planet", "closest", "sun"), ("mercury",)),
    Question("What color is a ripe banana?", ("color", "banana"), ("yellow",)),
    Question("How many days are in a week?", ("days", "week"), ("seven", "7")),
    Question("What do bees make?", ("bees", "make"), ("honey",)),
    Question("What is the largest ocean on Earth?", ("largest", "ocean", "earth"), ("pacific",)),
    Question("What is frozen water called?", ("frozen", "water"), ("ice",)),
    Question("How many minutes are in an hour?", ("minutes", "hour"), ("sixty", "60")),
    Question("Which animal is known as the king of the jungle?", ("animal", "king", "jungle"),
             ("lion",)),
    Question("What is two plus three?", ("two", "plus", "three"), ("five", "5")),
    Question("What gas do plants take in from the air?", ("gas", "plants", "air"),
             ("carbon dioxide", "co2")),
    Question("In which country are the pyramids of Giza?", ("country", "pyramids"), ("egypt",)),
    Question("What is the opposite of hot?", ("opposite", "hot"), ("cold",)),
    Question("How many wheels does a bicycle have?", ("wheels", "bicycle"), ("two", "2")),
    Question("What is the boiling point of water in Celsius?", ("boiling", "water", "celsius"),
             ("100", "hundred")),
    Question("Who wrote Romeo and Juliet?", ("wrote", "romeo", "juliet"), ("shakespeare",)),
    Question("What is the tallest animal in the world?", ("tallest", "animal"), ("giraffe",)),
    Question("How many months are in a year?", ("months", "year"), ("twelve", "12")),
    Question("What do you call a baby cat?", ("baby", "cat"), ("kitten",)),
    Question("Which season comes after winter?", ("season", "winter"), ("spring",)),
    Question("What is the main language spoken in Brazil?", ("language", "brazil"),
             ("portuguese",)),
    Question("What is the color of the sky on a clear day?", ("color", "sky", "clear"), ("blue",)),
    Question("How many sides does a triangle have?", ("sides", "triangle"), ("three", "3")),
    Question("What fruit keeps the doctor away?", ("fruit", "doctor"), ("apple",)),
    Question("Which metal is liquid at room temperature?", ("metal", "liquid", "temperature"),
             ("mercury",)),
    Question("What is ten minus four?", ("ten", "minus", "four"), ("six", "6")),
    Question("What instrument has black and white keys?", ("instrument", "keys"), ("piano",)),
    Question("Where does the sun rise?", ("sun", "rise"), ("east",)),
    Question("What is the capital city of Japan?", ("capital", "japan"), ("tokyo",)),
    Question("How many hours are in a day?", ("hours", "day"), ("twenty-four", "24",
                                                                 "twenty four")),
    Question("Can you tell me a short joke?", ("tell", "joke"), ()),
)
