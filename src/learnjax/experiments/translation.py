"""Translation: instruction tuning (`learnjax.training.instruction_tuning`) on
English->Spanish pairs (`learnjax.data.translation`), from two small
next-word foundations and from random weights, by number of pairs.

The two foundations differ in what they read and nothing else: the same
recipe (size, steps, rows: as many training tokens), the same vocabulary (both
languages' words and the prompt's), corpora of the same token count; one
reads English only, the other English and Spanish, never one sentence in both
(`translation.corpus`). Each translation of a held-out sentence is scored by
chrF and BLEU (`sacrebleu`, the field's standard) and by exact match; the
`new_words` sentences measure whether a word that no tuning pair holds is
translated all the same.
"""

from __future__ import annotations

from learnjax.data import spanish, translation
from learnjax.storage.cache import cached_json, cached_model
from learnjax.training.recipe import NEXT_WORD_RECIPE

SIZES = (16, 64, 256)
SEEDS = (0, 1, 2)
LEARNING_RATES = (3e-3, 1e-2)
MODES = ("bilingual", "english", "scratch")
MODE_NAMES = {"bilingual": "bilingual foundation", "english": "English-only foundation", "scratch": "from scratch"}
CORPUS_TOKENS = 40_000
# Small: a corpus of short sentences, one shared vocabulary of about 250 words.
RECIPE = NEXT_WORD_RECIPE.replace(d_model=64, n_layers=2, n_heads=4, max_len=32, steps=300, batch_size=32, warmup_steps=30)
TUNING_STEPS = 150


def shared_tokenizer():
    """One vocabulary for both foundations: every word of both corpora and of every pair."""
    from learnjax.text.tokenizer import Tokenizer

    texts = [t for language in translation.LANGUAGES for t in translation.corpus(language, CORPUS_TOKENS)]
    pairs = [f"{e.prompt} {e.response}" for split in translation.SPLITS for e in translation.examples(split)]
    return Tokenizer.from_texts(texts + pairs)


def _pretrained(language: str):
    from learnjax.training.pretraining import pretrain

    return pretrain(RECIPE, translation.corpus(language, CORPUS_TOKENS), tokenizer=shared_tokenizer())


def translation_foundation(language: str):
    """The foundation that read `language`'s corpus ("english" or "bilingual"): cached."""
    from learnjax.training.foundation import Foundation

    if language not in translation.LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(translation.LANGUAGES)}; got {language!r}")
    params = {"language": language, "corpus_tokens": CORPUS_TOKENS, **RECIPE.to_dict()}
    return cached_model(
        params,
        _pretrained,
        read=Foundation.load,
        make=lambda path: _pretrained(language).save(path),
        what=f"pre-training the {language} foundation for translation",
        entry=foundation_of,
    )


def foundation_of(params: dict):
    """`translation_foundation` of the language `params` names."""
    return translation_foundation(params["language"])


def translate(assistant, pairs: list) -> list[str]:
    """The assistant's Spanish for each pair's prompt (greedy), as long as the longest reference allows."""
    longest = max(len(assistant.tokenizer.encode(e.response)) for e in pairs) + 1  # and its [END]
    return assistant.answer([e.prompt for e in pairs], max_new_tokens=longest)


def score_translations(outputs: list[str], pairs: list) -> dict:
    """chrF and BLEU over the set (`sacrebleu`, 0 to 100), and the share exactly right."""
    import sacrebleu

    references = [e.response for e in pairs]
    return {
        "chrf": sacrebleu.corpus_chrf(outputs, [references]).score,
        "bleu": sacrebleu.corpus_bleu(outputs, [references]).score,
        "exact": sum(o == r for o, r in zip(outputs, references)) / len(pairs),
    }


def new_word_check(outputs: list[str]) -> dict:
    """Of the `new_words` sentences: the share whose fact's noun is written
    (`translation.key_word`), and what is written in its place, by count."""
    from collections import Counter

    from learnjax.text.tokenizer import split_words

    statements = translation.statement_splits()["new_words"]
    written = [translation.key_word(s) in split_words(o) for s, o in zip(statements, outputs)]
    instead: Counter = Counter()
    for s, o, right in zip(statements, outputs, written):
        if not right:
            expected = split_words(translation.pair(s).response)
            instead.update(w for w in split_words(o) if w not in expected)
    return {"key_word": sum(written) / len(written), "instead": dict(instead.most_common(5))}


def _translation(sizes: tuple[int, ...], seeds: tuple[int, ...], learning_rates: tuple[float, ...]) -> dict:
    import dataclasses
    import functools
    import time

    import numpy as np

    from learnjax.experiments.dev_choice import choose_on_dev
    from learnjax.experiments.tuned_runs import tuned_assistant
    from learnjax.models.lora import trainable_share
    from learnjax.training.sft import SFTSettings

    started = time.perf_counter()
    foundations = {language: translation_foundation(language) for language in translation.LANGUAGES}
    dev, test, unseen = (translation.examples(split) for split in ("dev", "held_out", "new_words"))
    base = SFTSettings(steps=TUNING_STEPS)

    def tuned(mode: str, n: int, seed: int, learning_rate: float):
        foundation = foundations["english" if mode == "scratch" else mode]  # scratch: its architecture and vocabulary only
        return tuned_assistant(
            foundation,
            translation.training_examples(n, seed),
            mode="scratch" if mode == "scratch" else "full",
            seed=seed,
            settings=dataclasses.replace(base, learning_rate=learning_rate),
        )

    rows, chosen = [], {}
    for mode in MODES:
        for n in sizes:
            began = time.perf_counter()
            # The rate chosen by chrF on the dev sentences.
            best, runs, _ = choose_on_dev(
                functools.partial(tuned, mode, n), learning_rates, seeds, lambda a: score_translations(translate(a, dev), dev)["chrf"]
            )
            scores = [score_translations(translate(a, test), test) for a in runs]
            unseen_outputs = [translate(a, unseen) for a in runs]
            unseen_scores = [score_translations(o, unseen) for o in unseen_outputs]
            checks = [new_word_check(o) for o in unseen_outputs]
            chosen[mode, n] = runs[0]
            rows.append(
                {
                    "mode": mode,
                    "n_pairs": n,
                    "learning_rate": best,
                    **{key: float(np.mean([s[key] for s in scores])) for key in ("chrf", "bleu", "exact")},
                    **{f"{key}_std": float(np.std([s[key] for s in scores])) for key in ("chrf", "bleu", "exact")},
                    **{f"new_words_{key}": float(np.mean([s[key] for s in unseen_scores])) for key in ("chrf", "bleu", "exact")},
                    "new_words_key_word": float(np.mean([c["key_word"] for c in checks])),
                    "new_words_instead": checks[0]["instead"],
                    "seconds": time.perf_counter() - began,
                }
            )
    n = sizes[-1]
    unseen_statements = translation.statement_splits()["new_words"]
    shown = test[:6] + [next(e for e, s in zip(unseen, unseen_statements) if s.fact == fact) for fact in translation.NEW_WORD_FACTS]
    written = {mode: translate(chosen[mode, n], shown) for mode in MODES}
    transcripts = [
        {"source": e.prompt.removeprefix(translation.PROMPT), "reference": e.response, "new_words": e in unseen, **{m: written[m][i] for m in MODES}}
        for i, e in enumerate(shown)
    ]
    corpora = {language: translation.corpus(language, CORPUS_TOKENS) for language in translation.LANGUAGES}
    return {
        "rows": rows,
        "transcripts": transcripts,
        "sizes": list(sizes),
        "seeds": list(seeds),
        "learning_rates": list(learning_rates),
        "sentences": {split: len(translation.examples(split)) for split in translation.SPLITS},
        "new_words": translation.new_words(),
        "foundations": {
            language: {
                "texts": len(corpora[language]),
                "corpus_tokens": translation.token_count(corpora[language]),
                "training_tokens": f.recipe.steps * f.recipe.batch_size * f.recipe.max_len,
                "parameters": int(trainable_share(f.model)["model"]),
                "vocabulary": len(f.tokenizer),
                "final_loss": f.history.loss[-1],
                "seconds": f.seconds,
                "parallel_pairs": len(spanish.parallel_pairs(corpora[language])),
            }
            for language, f in foundations.items()
        },
        "settings": dataclasses.asdict(base),
        "runs": len(MODES) * len(sizes) * (len(learning_rates) + len(seeds) - 1),
        "seconds": time.perf_counter() - started,
    }


def translation_experiment(
    sizes: tuple[int, ...] = SIZES, seeds: tuple[int, ...] = SEEDS, learning_rates: tuple[float, ...] = LEARNING_RATES
) -> dict:
    """chrF, BLEU and exact match of held-out sentences translated after
    instruction tuning each foundation and the same model from scratch on
    `sizes` pairs; the rate chosen per cell on dev, `seeds` seeds."""
    params = {"sizes": tuple(sizes), "seeds": tuple(seeds), "learning_rates": tuple(learning_rates)}
    return cached_json("translation", params, _translation)


def translation_table(result: dict) -> str:
    """One row per number of pairs and model: chrF, BLEU and exact match on the
    held-out sentences, and on the new-word ones chrF and the share whose noun is written."""
    from learnjax.site.render import table

    return table(
        ["pairs", "model", "chrF", "BLEU", "exact", "new-word sentences: chrF", "new noun written"],
        [
            (
                r["n_pairs"],
                MODE_NAMES[r["mode"]],
                f"{r['chrf']:.1f} ± {r['chrf_std']:.1f}",
                f"{r['bleu']:.1f}",
                f"{r['exact']:.0%}",
                f"{r['new_words_chrf']:.1f}",
                f"{r['new_words_key_word']:.0%}",
            )
            for n in result["sizes"]
            for r in result["rows"]
            if r["n_pairs"] == n
        ],
    )


def comparison(result: dict) -> str:
    """What the measured result says of the lesson, in words computed from it:
    whether the bilingual foundation needs fewer pairs than the others, and
    whether a word in no tuning pair gets translated."""
    chrf = {(r["mode"], r["n_pairs"]): r["chrf"] for r in result["rows"]}
    sizes = result["sizes"]
    few, many = sizes[0], sizes[-1]
    ahead = [n for n in sizes if all(chrf["bilingual", n] > chrf[m, n] for m in MODES if m != "bilingual")]
    over_english = [n for n in sizes if chrf["bilingual", n] > chrf["english", n]]
    scores = lambda n: ", ".join(f"{MODE_NAMES[m]} {chrf[m, n]:.0f}" for m in MODES)
    best = max(MODES, key=lambda m: chrf[m, many])
    if ahead == sizes:
        verdict = "Reading both languages helps here: the bilingual foundation is ahead of both others at every number of pairs. "
    else:
        spread = {n: max(r["chrf_std"] for r in result["rows"] if r["n_pairs"] == n) for n in sizes}
        close = [n for n in ahead if chrf["bilingual", n] - max(chrf[m, n] for m in MODES if m != "bilingual") < spread[n]]
        verdict = (
            "Reading both languages does not make a few pairs enough here: the bilingual foundation is ahead of both others at "
            + (f"{' and '.join(map(str, ahead))} pairs only" if ahead else "no number of pairs")
            + (f" (at {' and '.join(map(str, close))}, by less than the seeds' spread). " if close else ". ")
        )
    verdict += f"With {few} pairs, chrF is {scores(few)}; with {many}, {scores(many)}; the best: {MODE_NAMES[best]}. " + (
        f"Against the English-only foundation alone, the bilingual one is ahead at {' and '.join(map(str, over_english))} pairs"
        + (f", behind at {', '.join(str(n) for n in sizes if n not in over_english)}. " if len(over_english) < len(sizes) else ". ")
        if over_english
        else "The bilingual foundation is not ahead of the English-only one at any number of pairs. "
    )
    written = {(r["mode"], r["n_pairs"]): r["new_words_key_word"] for r in result["rows"]}
    if max(written.values()) == 0:
        bilingual = next(r for r in result["rows"] if (r["mode"], r["n_pairs"]) == ("bilingual", many))
        instead = sorted(bilingual["new_words_instead"].items(), key=lambda kv: -kv[1])[:2]
        verdict += (
            "No model, at any number of pairs, wrote the Spanish noun of a new-word sentence: the bilingual foundation read "
            "museo and museum, but never in one sentence, and tuning on other pairs did not connect them. They wrote a trained "
            f"fact's words in its place (the most frequent, from the bilingual foundation with {many} pairs, seed 0: {', '.join(w for w, _ in instead)})."
        )
    else:
        verdict += (
            "The Spanish noun of a new-word sentence was written in "
            + ", ".join(f"{written[m, many]:.0%} ({MODE_NAMES[m]})" for m in MODES)
            + f" of the sentences with {many} pairs."
        )
    return verdict
