"""The site's models running in the reader's browser compute what JAX computes.

The build exports the cached foundation models into the site (docs/overrides/
hooks/live_models.py) and the widgets run them with docs/javascripts/
learnjax-model.js. Here Chromium loads the built site's pages, as in
test_browser.py (the same build, server and browser fixtures; skipped or failed
the same way without Chromium), and through those pages: the scores equal
JAX's within 1e-4, greedy writing gives exactly the library's tokens, the café
sentence's top word is the library's, what the reader types is shown as text,
and nothing is fetched from another host. The models' size, load time and
milliseconds per written token are printed.
"""

from __future__ import annotations

import json
import re

import jax.numpy as jnp
import numpy as np
import pytest

from learnjax.storage.cache import foundation_model
from learnjax.text.tokenizer import CLS_ID
from learnjax.training.pretraining import NEXT_WORD_RECIPE, fill_mask, generate_text
from test_browser import _browser_installed, _is_external, _open, browser, site_url  # noqa: F401  (the shared fixtures)

CAFE_MASK = "Today I went to the café and drank [MASK]."
CAFE_PROMPT = "Today I went to the café and drank"
MASKED_TEXTS = [
    CAFE_MASK,
    "The sky is [MASK].",
    "Every day the baker drives to the [MASK].",
    "Zoë's naïve flatmate, from Zürich, [mask] tea!",  # unknown words, accents, a lower-case mask
    " ".join(["the nurse works at the hospital ."] * 6) + " [MASK]",  # longer than the context: cut
]
PROMPTS = [CAFE_PROMPT, "Every day the pilot drives to the", "After friday comes", "My friends", "Last night Tom"]
MAX_NEW_TOKENS = 12
TOLERANCE = 1e-4
MODELS_BUDGET = 3_000_000  # bytes: every widget's model together
XSS = '<img src=x onerror="window.__learnjaxXss = 1">'

# Runs in the page: loads the module and a model from the site, then scores each text.
_LOGITS_JS = """async ({module, manifest, texts, masks}) => {
  const {loadModel} = await import(module);
  const started = performance.now();
  const model = await loadModel(manifest);
  const loadMs = performance.now() - started;
  const rows = texts.map(text => {
    const {ids} = model.read(text, {masks});
    return {ids, logits: model.logits(ids).map(row => Array.from(row))};
  });
  return {loadMs, rows};
}"""

_WRITE_JS = """async ({module, manifest, prompts, maxNewTokens}) => {
  const {loadModel} = await import(module);
  const model = await loadModel(manifest);
  return prompts.map(prompt => model.write(prompt, {maxNewTokens}));
}"""


@pytest.fixture(scope="module")
def masked():
    return foundation_model(progress=False)


@pytest.fixture(scope="module")
def writer():
    return foundation_model(NEXT_WORD_RECIPE, progress=False)


@pytest.fixture
def visit(browser, site_url):  # noqa: F811
    """A page with a widget, opened as a reader opens it; closed after the test, its requests checked."""
    opened = []

    def open_page(path: str):
        opened.append(_open(browser, site_url + path))
        return opened[-1]

    yield open_page
    for page_visit in opened:
        page_visit.page.close()
        assert not page_visit.external_requests, page_visit.external_requests
        assert not page_visit.console_errors, page_visit.console_errors
        assert not page_visit.failed_requests, page_visit.failed_requests


def _urls(site_url: str, name: str) -> dict:  # noqa: F811
    return {"module": site_url + "javascripts/learnjax-model.js", "manifest": site_url + f"models/{name}.json"}


def _jax_logits(foundation, ids: list[int]) -> np.ndarray:
    """The library's scores for one text's ids ([CLS] first), padded to the model's rows as the library pads."""
    row = np.zeros((1, foundation.model.config.max_len), np.int32)
    row[0, : len(ids)] = ids
    return np.asarray(foundation.model(jnp.asarray(row)))[0, : len(ids)]


@pytest.mark.parametrize("name, texts, masks", [("masked", MASKED_TEXTS, True), ("writer", PROMPTS, False)])
def test_the_browser_s_scores_equal_jax_s(visit, site_url, masked, writer, name, texts, masks):  # noqa: F811
    foundation = {"masked": masked, "writer": writer}[name]
    page = visit("self-supervised-learning/" if name == "masked" else "pre-training/").page
    result = page.evaluate(_LOGITS_JS, {**_urls(site_url, name), "texts": texts, "masks": masks})
    worst = 0.0
    for text, row in zip(texts, result["rows"]):
        expected_ids = foundation.tokenizer.encode_batch([text], foundation.model.config.max_len, masks=masks)[0]
        expected_ids = [int(i) for i in expected_ids if i] if masks else [CLS_ID, *foundation.tokenizer.encode(text)]
        assert row["ids"] == expected_ids, text
        difference = np.abs(np.asarray(row["logits"]) - _jax_logits(foundation, row["ids"])).max()
        worst = max(worst, float(difference))
    print(f"\n{name}: {len(texts)} texts, largest difference from JAX's logits {worst:.2e}; loaded in {result['loadMs']:.0f} ms")
    assert worst < TOLERANCE


def test_greedy_writing_gives_the_library_s_tokens(visit, site_url, writer):  # noqa: F811
    page = visit("pre-training/").page
    written = page.evaluate(_WRITE_JS, {**_urls(site_url, "writer"), "prompts": PROMPTS, "maxNewTokens": MAX_NEW_TOKENS})
    expected = generate_text(writer, PROMPTS, max_new_tokens=MAX_NEW_TOKENS)
    assert [w["tokens"] for w in written] == [g.tokens for g in expected]
    assert [w["text"] for w in written] == [g.text for g in expected]
    per_token = sum(w["milliseconds"] for w in written) / sum(len(w["tokens"]) for w in written)
    print(f"\nwriter: {sum(len(w['tokens']) for w in written)} tokens written greedily, as the library's; "
          f"{per_token:.2f} ms per token, prompt reading included")
    assert per_token < 100


def test_the_fill_mask_widget_finds_the_library_s_word_for_the_café_sentence(visit, masked):
    page = visit("self-supervised-learning/").page
    field = page.get_by_label("A sentence with [MASK] where a word is hidden")
    assert field.input_value() == CAFE_MASK
    field.focus()
    page.keyboard.press("Enter")  # the keyboard alone runs it
    predictions = page.locator(".learnjax-live__predictions li")
    predictions.first.wait_for()
    shown = [re.fullmatch(r"(.+): ([\d.]+)%", text).groups() for text in predictions.all_inner_texts()]
    expected = fill_mask(masked, CAFE_MASK, top_k=5)
    assert [word for word, _ in shown] == [p.word for p in expected]
    assert all(abs(float(percent) - 100 * p.probability) < 0.051 for (_, percent), p in zip(shown, expected))
    assert shown[0][0] == "coffee"  # what the Pre-training page's café test says
    print(f"\ncafé sentence in the browser: {', '.join(f'{w} {p}%' for w, p in shown)}")


def test_what_the_reader_types_is_shown_as_text_and_runs_nothing(visit):
    page = visit("pre-training/").page
    field = page.get_by_label("A prompt for the model to continue")
    field.fill(XSS)
    field.press("Enter")
    widget = page.locator(".learnjax-live")
    page.locator(".learnjax-live__written").wait_for()
    assert XSS in widget.locator(".learnjax-live__prompt").inner_text()
    assert widget.locator("img").count() == 0
    assert page.evaluate("window.__learnjaxXss") is None
    assert "[UNK]" in widget.locator(".learnjax-live__tokens").inner_text()  # `img`, `onerror`: words it never read


def test_long_input_is_cut_with_a_visible_note_and_the_sliders_work_from_the_keyboard(visit, writer):
    page = visit("pre-training/").page
    temperature = page.get_by_label("Temperature")
    temperature.focus()
    page.keyboard.press("ArrowRight")
    assert temperature.input_value() == "0.1" and temperature.get_attribute("aria-valuetext") == "0.1"
    page.get_by_label("Top-k").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_label("Top-k").get_attribute("aria-valuetext") == "the 1 likeliest"
    words = ["the", "sky", "is", "blue"] * writer.model.config.max_len
    field = page.get_by_label("A prompt for the model to continue")
    field.fill(" ".join(words))
    page.get_by_role("button", name="Write").click()
    note = page.locator(".learnjax-live__note")
    note.wait_for()
    assert note.is_visible() and f"Your text has {len(words)} tokens" in note.inner_text()
    assert page.locator(".learnjax-live__written strong").inner_text()  # it still writes, within the context


def test_the_models_are_small_and_come_from_the_site_itself(built_site, visit, site_url):  # noqa: F811
    files = sorted((built_site / "models").iterdir())
    manifests = [f for f in files if f.suffix == ".json"]
    assert {f.stem for f in manifests} == {"masked", "writer"}
    for manifest in manifests:
        assert (built_site / "models" / json.loads(manifest.read_text(encoding="utf-8"))["weights"]["file"]).is_file()
    total = sum(f.stat().st_size for f in files)
    print(f"\nmodel files: {len(files)}, {total:,} bytes in all")
    assert total <= MODELS_BUDGET
    page_visit = visit("self-supervised-learning/")
    page_visit.page.get_by_role("button", name="Fill in the [MASK]").click()
    page_visit.page.locator(".learnjax-live__predictions li").first.wait_for()
    fetched = [url for url in page_visit.requests if "/models/" in url]
    assert fetched and all(url.startswith(site_url) for url in fetched)
    assert not [url for url in page_visit.requests if _is_external(url)]
