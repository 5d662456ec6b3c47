"""`learnjax experiment`: a measured experiment of the site, and its table."""

from __future__ import annotations

import argparse

from learnjax.cli.common import (
    add_command,
    print_json,
)

EXAMPLES = {
    "experiment": """examples:
  learnjax experiment label-efficiency
  learnjax experiment label-efficiency --json
  learnjax experiment generation""",
}


EXPERIMENTS = {
    "label-efficiency": "fine-tuning vs. probe vs. scratch against the number of labels",
    "generation": "what the generative foundation model learned: next words, perplexity, facts by temperature",
    "instruction-tuning": "knowing versus saying: held-out questions after instruction tuning, and LoRA",
}


def cmd_experiment(args: argparse.Namespace) -> None:
    from learnjax import experiments
    from learnjax.storage.cache import entries_used

    with entries_used() as used:
        result = dict(getattr(experiments, args.name.replace("-", "_"))())
    cached = used[-1]["cached"]  # the experiment's own entry: the last one finished
    baseline = None
    if args.name == "label-efficiency":  # the classical baseline on the same splits, where scikit-learn is installed
        from learnjax.experiments.tfidf_baseline import tfidf_label_efficiency

        try:
            baseline = tfidf_label_efficiency(tuple(sorted({row["n_labels"] for row in result["rows"]})), tuple(result["seeds"]))
        except ModuleNotFoundError:
            baseline = None
    # The time it took when it was computed, which a cached run did not spend now.
    result = {"cached": cached, "seconds_when_computed": result.pop("seconds"), **result}
    if baseline is not None:
        result["baseline"] = baseline
    if args.json:
        print_json(result)
        return
    took = f"experiment took {result['seconds_when_computed']:.0f} s" + (" when first run (read from the cache now)" if cached else "")
    if args.name == "label-efficiency":
        table = experiments.label_efficiency_table(result)
        if baseline is not None:
            from learnjax.experiments.tfidf_baseline import table_with_baseline

            table = table_with_baseline(table, baseline)
        print(table)
        print(
            f"\n{len(result['seeds'])} seeds per cell; learning rate chosen per cell on the dev set from {result['learning_rates']}; "
            f"{result['settings']['steps']} steps of batch {result['settings']['batch_size']} for every mode; {took}."
        )
        if baseline is not None:
            print(
                f"TF-IDF + logistic regression (scikit-learn): the same labeled subsets, seeds and test set; C chosen per cell "
                f"on the dev set from {baseline['C_values']}."
            )
        else:
            print("(the classical baseline needs scikit-learn: pip install scikit-learn)")
    else:
        print(getattr(experiments, f"{args.name.replace('-', '_')}_summary")(result))
        print(f"\n{took}.")


def add_commands(commands) -> None:
    """`experiment`."""
    p = add_command(commands, EXAMPLES, "experiment", "Run a measured experiment of the site and print its table.", cmd_experiment)
    p.add_argument("name", choices=list(EXPERIMENTS), help="; ".join(f"{name}: {what}" for name, what in EXPERIMENTS.items()))
