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
FIX = Verb("fix", "fixes", "fixed")
PICK = Verb("pick", "picks", "picked")
TAKE = Verb("take", "takes", "took")
WEAR = Verb("wear", "wears", "wore")

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
    Activity("bar", DRINK, "wine"),
    Activity("bookshop", BUY, "novels"),
    Activity("supermarket", BUY, "groceries"),
    Activity("canteen", EAT, "soup"),
    Activity("theatre", WATCH, "ballet"),
    Activity("aquarium", SEE, "sharks"),
    Activity("garage", FIX, "cars"),
    Activity("forest", PICK, "mushrooms"),
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
    ("waiter", "restaurant"),
    ("cashier", "supermarket"),
    ("actor", "theatre"),
    ("bartender", "bar"),
    ("ranger", "forest"),
    ("bookseller", "bookshop"),
    ("footballer", "stadium"),
    ("coach", "gym"),
)


@dataclass(frozen=True)
class Meal:
    when: str  # the time of day or occasion a question names: "morning", "birthday"
    food: str
    at: str  # how a sentence says when: "in the morning", "at a birthday"


# Many entities share an answer, as cities of birth do in biographies: a
# question about a new entity has an answer that other questions have too.
MEALS = (
    Meal("morning", "breakfast", "in the morning"),
    Meal("afternoon", "lunch", "in the afternoon"),
    Meal("noon", "lunch", "at noon"),
    Meal("evening", "dinner", "in the evening"),
    Meal("night", "dinner", "at night"),
    Meal("birthday", "cake", "at a birthday"),
    Meal("wedding", "cake", "at a wedding"),
    Meal("christmas", "turkey", "at christmas"),
    Meal("thanksgiving", "turkey", "at thanksgiving"),
    Meal("picnic", "sandwiches", "at a picnic"),
    Meal("barbecue", "burgers", "at a barbecue"),
    Meal("halloween", "sweets", "at halloween"),
    Meal("diwali", "sweets", "at diwali"),
    Meal("easter", "eggs", "at easter"),
)

WEATHER = (  # (condition, verb, item)
    ("raining", TAKE, "umbrella"),
    ("drizzling", TAKE, "umbrella"),
    ("cold", WEAR, "coat"),
    ("chilly", WEAR, "coat"),
    ("sunny", WEAR, "sunglasses"),
    ("bright", WEAR, "sunglasses"),
    ("snowing", WEAR, "boots"),
    ("icy", WEAR, "boots"),
    ("muddy", WEAR, "boots"),
    ("windy", WEAR, "scarf"),
    ("breezy", WEAR, "scarf"),
    ("hot", WEAR, "shorts"),
    ("warm", WEAR, "shorts"),
    ("freezing", WEAR, "gloves"),
    ("frosty", WEAR, "gloves"),
    ("stormy", WEAR, "raincoat"),
    ("wet", WEAR, "raincoat"),
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
    ("cherry", "red"),
    ("lime", "green"),
    ("plum", "purple"),
    ("aubergine", "purple"),
    ("blueberry", "blue"),
    ("pumpkin", "orange"),
    ("potato", "brown"),
    ("canary", "yellow"),
    ("swan", "white"),
    ("cloud", "white"),
    ("bear", "brown"),
    ("flamingo", "pink"),
    ("pig", "pink"),
    ("frog", "green"),
    ("mouse", "grey"),
    ("elephant", "grey"),
    ("beetle", "black"),
    ("violet", "purple"),
    ("ladybird", "red"),
    ("sea", "blue"),
    ("coal", "black"),
    ("tangerine", "orange"),
    ("chestnut", "brown"),
    ("salmon", "pink"),
    ("pigeon", "grey"),
)
# Things that ripen: "a ripe plum looks purple"; the others "look" their colour "today".
RIPENING = frozenset(
    ("banana", "lemon", "tomato", "strawberry", "cucumber", "carrot", "cherry", "lime", "plum", "aubergine", "blueberry", "pumpkin", "tangerine")
)

NAMES = (  # (name, pronoun); pronouns let agreement and coreference be learned
    ("anna", "she"),
    ("maria", "she"),
    ("sara", "she"),
    ("emma", "she"),
    ("lucy", "she"),
    ("nina", "she"),
    ("yuki", "she"),
    ("mana", "she"),
    ("aisha", "she"),
    ("grace", "she"),
    ("tom", "he"),
    ("ben", "he"),
    ("leo", "he"),
    ("sam", "he"),
    ("omar", "he"),
    ("ravi", "he"),
    ("kenji", "he"),
    ("lukas", "he"),
    ("diego", "he"),
    ("felix", "he"),
)
RELATIVES_SINGULAR = ("sister", "brother", "friend", "neighbour", "cousin", "aunt", "uncle")
RELATIVES_PLURAL = ("friends", "parents", "neighbours", "cousins", "colleagues", "grandparents")
