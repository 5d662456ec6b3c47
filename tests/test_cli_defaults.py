"""The command line states and uses the library's defaults: its help reads them
from the recipes and settings, and its recipe rules are the recipe's own."""

import dataclasses

import pytest

from learnjax.cli import build_parser
from learnjax.cli.common import dataclass_defaults
from learnjax.training.finetuning import FinetuneSettings
from learnjax.training.instruction_tuning import SFTSettings
from learnjax.training.preferences import DPOSettings
from learnjax.training.recipe import PretrainRecipe
from learnjax.training.rewards import GRPOSettings


def _help(command: str) -> str:
    """`learnjax COMMAND --help`, on one line (argparse wraps at the terminal's width)."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return " ".join(out.getvalue().split())


def test_the_defaults_read_from_source_are_the_classes_defaults():
    for cls, module in ((FinetuneSettings, "learnjax.training.finetuning"), (SFTSettings, "learnjax.training.sft"),
                        (DPOSettings, "learnjax.training.preferences"), (GRPOSettings, "learnjax.training.rewards")):
        read = dataclass_defaults(module, cls.__name__)
        assert read == {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls) if f.name in read}, cls
        assert set(read) >= {"learning_rate"} and set(read) & {"steps", "iterations"}, cls


def test_finetune_help_states_each_kind_of_models_steps():
    text = _help("finetune")
    assert f"default: {FinetuneSettings().steps} for a classifier, {SFTSettings().steps} for an assistant" in text
    assert f"the frozen encoder (default: {FinetuneSettings().head_steps}; 0: none)" in " ".join(text.split())


def test_the_tuning_commands_help_states_their_defaults():
    dpo, grpo = DPOSettings(), GRPOSettings()
    prefer, reinforce = _help("prefer"), _help("reinforce")
    for said in (f"(default: {dpo.beta:g})", f"training steps (default: {dpo.steps})", f"peak learning rate (default: {dpo.learning_rate:g})"):
        assert said in prefer
    for said in (f"batches of {grpo.questions_per_batch} questions", f"(default: {grpo.iterations})", f"(default: {grpo.group})",
                 f"sampling temperature (default: {grpo.temperature:g})", f"peak learning rate (default: {grpo.learning_rate:g})"):
        assert said in reinforce


def test_pretrain_help_states_the_default_recipe():
    text, recipe = _help("pretrain"), PretrainRecipe()
    for said in (f"training steps (default: {recipe.steps};", f"width of the model's vectors (default: {recipe.d_model})",
                 f"rows per batch (default: {recipe.batch_size})", f"at most this many words (default: {recipe.vocab_size};",
                 f"several rows (default: {recipe.max_len};", f"peak learning rate (default: {recipe.learning_rate:g})"):
        assert said in text


def test_a_recipe_of_another_width_has_the_mlp_the_command_line_gives_it():
    """`PretrainRecipe(d_model=128)` is the model `pretrain --d-model 128` builds:
    the MLP twice as wide as the vectors, unless given."""
    assert PretrainRecipe().d_ff == 2 * PretrainRecipe().d_model
    assert PretrainRecipe(d_model=128).d_ff == 256
    assert PretrainRecipe(d_model=128, d_ff=100).d_ff == 100
    assert PretrainRecipe().replace(d_model=32).d_ff == 64
    assert PretrainRecipe(d_ff=100).replace(d_model=32).d_ff == 100
    assert PretrainRecipe().to_dict()["d_ff"] == 128  # the default recipe, and its cache key, as before


def test_the_recipe_defaults_read_from_source_are_the_recipes():
    """Names bound elsewhere (`VOCAB_SIZE` from the subword module) are followed;
    `d_ff` reads as None, the rule that `__post_init__` fills in."""
    read = dataclass_defaults("learnjax.training.recipe", "PretrainRecipe")
    assert read.pop("d_ff") is None
    assert read == {name: value for name, value in PretrainRecipe().to_dict().items() if name != "d_ff"}


def test_the_command_line_loads_neither_jax_nor_numpy_to_start():
    import subprocess
    import sys

    code = "import sys, learnjax.cli\nlearnjax.cli.build_parser().format_help()\nprint(sorted({'jax', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
