"""The second language: Spanish written from the world's facts, its grammar
checked from the small lexicon (agreement, plurals, conjugation)."""

import pytest

from learnjax.data import spanish
from learnjax.data.spanish import Statement, agreeing, plural


@pytest.mark.parametrize("statement, english, written", [
    (Statement("anna", "café"), "anna drinks coffee at the café.", "anna bebe café en la cafetería."),
    (Statement("parents", "café", past=True), "my parents drank coffee at the café.", "mis padres bebieron café en la cafetería."),
    (Statement("uncle", "zoo", past=True), "my uncle saw lions at the zoo.", "mi tío vio leones en el zoo."),
    (Statement("friends", "market"), "my friends buy vegetables at the market.", "mis amigos compran verduras en el mercado."),
    (Statement("", "strawberry"), "the strawberry is red.", "la fresa es roja."),
    (Statement("", "strawberry", plural=True), "the strawberries are red.", "las fresas son rojas."),
    (Statement("", "lemon", past=True, plural=True), "the lemons were yellow.", "los limones eran amarillos."),
    (Statement("", "mouse", plural=True), "the mice are grey.", "los ratones son grises."),
    (Statement("", "carrot", plural=True), "the carrots are orange.", "las zanahorias son naranja."),
])
def test_a_statement_in_both_languages(statement, english, written):
    assert spanish.english(statement) == english
    assert spanish.spanish(statement) == written


def test_plurals_and_agreement_follow_the_rules_over_the_lexicon():
    assert [plural(w) for w in ("fresa", "limón", "ratón", "pez", "gris", "tomate")] == ["fresas", "limones", "ratones", "peces", "grises", "tomates"]
    for colour in spanish.COLOURS.values():
        for gender in "mf":
            one, many = agreeing(colour, gender, False), agreeing(colour, gender, True)
            # -o adjectives mark the gender; the others keep their form
            assert one == (colour[:-1] + {"m": "o", "f": "a"}[gender] if colour.endswith("o") else colour)
            assert many == (one if colour == "naranja" else plural(one))


def test_articles_and_verbs_agree_with_their_nouns_and_subjects():
    for english_thing, (noun, gender) in spanish.COLOURED.items():
        for many in (False, True):
            article, written, verb, _ = spanish.spanish(Statement("", english_thing, plural=many)).split(" ")
            assert article == spanish.ARTICLES[gender, many] and verb == ("son" if many else "es")
            assert written == (plural(noun) if many else noun)
    for forms in spanish.VERBS.values():  # the plural adds -n; the preterite plural ends in -ron
        assert forms[1].split()[0] == forms[0].split()[0] + "n" and forms[3].split()[0].endswith("ron")
    for relative, (word, many) in spanish.RELATIVES.items():
        written = spanish.spanish(Statement(relative, "bank"))
        assert written == f"{'mis' if many else 'mi'} {word} {'sacan' if many else 'saca'} dinero en el banco."


def test_every_activity_and_colour_of_the_lexicon_is_a_fact_of_the_world():
    assert {a.place for a in spanish.ACTIVITIES} == set(spanish.PLACES)
    assert {a.thing for a in spanish.ACTIVITIES} == set(spanish.THINGS)
    assert {a.verb.base for a in spanish.ACTIVITIES} <= set(spanish.VERBS)
    assert set(spanish.COLOURED) <= {thing for thing, _ in spanish.world.COLOURS}


def test_the_bilingual_corpus_says_each_statement_in_one_language_only():
    texts = spanish.monolingual_texts(2000)
    assert len(texts) == 2000 and spanish.parallel_pairs(texts) == []
    said = {s: (spanish.english(s) in texts, spanish.spanish(s) in texts) for s in spanish.all_statements()}
    assert 0.3 < sum(en for en, _ in said.values()) / len(said) < 0.5 and 0.3 < sum(es for _, es in said.values()) / len(said) < 0.5
    # Planted: one translated pair among the texts is found.
    statement = next(s for s, (en, _) in said.items() if en)
    assert spanish.parallel_pairs([*texts, spanish.spanish(statement)]) == [(spanish.english(statement), spanish.spanish(statement))]


def test_every_statement_is_written_in_both_languages_and_no_two_alike():
    statements = spanish.all_statements()
    for write in (spanish.english, spanish.spanish):
        texts = [write(s) for s in statements]
        assert len(set(texts)) == len(texts)  # one text per statement: a translation is one answer
