"""The facts of a small world that the generated texts describe.

Everything the pre-trained model can learn lives here: what people do at each
place, who works where, what is eaten when, what is worn in which weather, the
order of the days and the colour of things. The corpus states these facts in
many sentence frames; the held-out cloze sentences probe them in frames and
combinations the corpus never uses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    base: str  # drink
    third: str  # drinks
    past: str  # drank


@dataclass(frozen=True)
class Activity:
    place: str
    verb: Verb
    thing: str  # the object that a cloze sentence hides


DRINK = Verb("drink", "drinks", "drank")
BUY = Verb("buy", "buys", "bought")
EAT = Verb("eat", "eats", "ate")
READ = Verb("read", "reads", "read")
WATCH = Verb("watch", "watches", "watched")
CATCH = Verb("catch", "catches", "caught")
SEE = Verb("see", "sees", "saw")
LIFT = Verb("lift", "lifts", "lifted")
SWIM = Verb("swim", "swims", "swam")
BUILD = Verb("build", "builds", "built")
BOARD = Verb("board", "boards", "boarded")
WITHDRAW = Verb("withdraw", "withdraws", "withdrew")
STUDY = Verb("study", "studies", "studied")
BORROW = Verb("borrow", "borrows", "borrowed")
PLAY = Verb("play", "plays", "played")

# One activity per place: the regularity a reader of the corpus can pick up.
ACTIVITIES = (
    Activity("café", DRINK, "coffee"),
    Activity("pub", DRINK, "beer"),
    Activity("teahouse", DRINK, "tea"),
    Activity("bakery", BUY, "bread"),
    Activity("market", BUY, "vegetables"),
    Activity("pharmacy", BUY, "medicine"),
    Activity("florist", BUY, "flowers"),
    Activity("butcher", BUY, "sausages"),
    Activity("pizzeria", EAT, "pizza"),
    Activity("restaurant", EAT, "pasta"),
    Activity("library", BORROW, "books"),
    Activity("cinema", WATCH, "films"),
    Activity("stadium", WATCH, "football"),
    Activity("station", CATCH, "trains"),
    Activity("airport", BOARD, "planes"),
    Activity("lake", CATCH, "fish"),
    Activity("zoo", SEE, "lions"),
    Activity("museum", SEE, "paintings"),
    Activity("gym", LIFT, "weights"),
    Activity("pool", SWIM, "laps"),
    Activity("beach", BUILD, "sandcastles"),
    Activity("bank", WITHDRAW, "money"),
    Activity("school", STUDY, "maths"),
    Activity("park", PLAY, "frisbee"),
)

JOBS = (  # (job, workplace)
    ("doctor", "hospital"),
    ("nurse", "hospital"),
    ("teacher", "school"),
    ("baker", "bakery"),
    ("chef", "restaurant"),
    ("pilot", "airport"),
    ("librarian", "library"),
    ("pharmacist", "pharmacy"),
    ("farmer", "farm"),
    ("mechanic", "garage"),
    ("banker", "bank"),
    ("barista", "café"),
    ("lifeguard", "pool"),
    ("zookeeper", "zoo"),
    ("judge", "court"),
    ("curator", "museum"),
)

MEALS = (("morning", "breakfast"), ("afternoon", "lunch"), ("evening", "dinner"))

WEATHER = (  # (condition, verb, item)
    ("raining", Verb("take", "takes", "took"), "umbrella"),
    ("cold", Verb("wear", "wears", "wore"), "coat"),
    ("sunny", Verb("wear", "wears", "wore"), "sunglasses"),
    ("snowing", Verb("wear", "wears", "wore"), "boots"),
)

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

COLOURS = (  # (thing, colour)
    ("banana", "yellow"),
    ("lemon", "yellow"),
    ("tomato", "red"),
    ("strawberry", "red"),
    ("grass", "green"),
    ("cucumber", "green"),
    ("sky", "blue"),
    ("snow", "white"),
    ("crow", "black"),
    ("carrot", "orange"),
)

NAMES = (  # (name, pronoun); pronouns let agreement and coreference be learned
    ("anna", "she"), ("maria", "she"), ("sara", "she"), ("emma", "she"), ("lucy", "she"),
    ("nina", "she"), ("yuki", "she"), ("mana", "she"), ("aisha", "she"), ("grace", "she"),
    ("tom", "he"), ("ben", "he"), ("leo", "he"), ("sam", "he"), ("omar", "he"),
    ("ravi", "he"), ("kenji", "he"), ("lukas", "he"), ("diego", "he"), ("felix", "he"),
)
RELATIVES_SINGULAR = ("sister", "brother", "friend", "neighbour", "cousin", "aunt", "uncle")
RELATIVES_PLURAL = ("friends", "parents", "neighbours", "cousins", "colleagues", "grandparents")
