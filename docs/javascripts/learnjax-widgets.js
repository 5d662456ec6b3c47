// Widgets that let a reader try the site's models: fill in a [MASK], write a
// continuation, look at attention, classify a message, ask the assistant. Each is an element `<div class="learnjax-live" data-widget=...
// data-model=... data-preset=...>` on a page; this script builds its controls.
// Everything the reader types, and everything the model writes, is shown as
// text (textContent), never parsed as HTML.

import { loadModel } from "./learnjax-model.js";

const MODELS = new URL("../models/", import.meta.url); // written there by the build (docs/overrides/hooks/live_models.py)
const loaded = new Map();

/** The exported model `name`, fetched once per page. */
export function model(name) {
  if (!loaded.has(name)) loaded.set(name, loadModel(new URL(`${name}.json`, MODELS).href));
  return loaded.get(name);
}

let counter = 0;

function element(tag, properties = {}, children = []) {
  const node = Object.assign(document.createElement(tag), properties);
  for (const child of children) node.append(child);
  return node;
}

/** A labelled control: the label names it for a screen reader and focuses it when clicked. */
function labelled(text, control) {
  control.id = `learnjax-live-${++counter}`;
  return element("div", { className: "learnjax-live__field" }, [element("label", { htmlFor: control.id, textContent: text }), control]);
}

/** A range input with its value shown beside it (and announced through aria-valuetext). */
function slider(text, { min, max, step, value, describe }) {
  const input = element("input", { type: "range", min, max, step, value });
  const shown = element("output", { className: "learnjax-live__value" });
  const update = () => {
    shown.textContent = describe(Number(input.value));
    input.setAttribute("aria-valuetext", shown.textContent);
  };
  input.addEventListener("input", update);
  update();
  const field = labelled(text, input);
  field.append(shown);
  return { field, input };
}

function status(widget) {
  return element("p", { className: "learnjax-live__status", role: "status" });
}

/** Shows the tokens the model read ([UNK] for a word it never saw) and a note when the text was cut. */
function showReading(into, tokens, cut, total, maxWords) {
  into.append(element("p", { className: "learnjax-live__tokens", textContent: `Read as: ${tokens.join(" ")}` }));
  if (cut) {
    into.append(element("p", { className: "learnjax-live__note",
      textContent: `Your text has ${total} tokens; the model reads at most ${maxWords} here, so the rest was cut.` }));
  }
}

/** `compute` as an event handler: a note while the model loads, any error said in the status line. */
function running(said, compute) {
  return async (event) => {
    event.preventDefault();
    said.textContent = "Loading the model…";
    try {
      await compute();
    } catch (error) {
      said.textContent = `The model could not run: ${error.message}`;
    }
  };
}

function fillMaskWidget(root) {
  const input = element("input", { type: "text", value: root.dataset.preset || "", autocomplete: "off", spellcheck: false });
  const button = element("button", { type: "submit", className: "learnjax-live__button", textContent: "Fill in the [MASK]" });
  const said = status(root);
  const results = element("div", { className: "learnjax-live__results", ariaLive: "polite" });
  const form = element("form", { className: "learnjax-live__form" }, [labelled("A sentence with [MASK] where a word is hidden", input), button]);
  root.replaceChildren(form, said, results);
  form.addEventListener("submit", running(said, async () => {
    const m = await model(root.dataset.model);
    const answer = m.fillMask(input.value, 5);
    results.replaceChildren();
    showReading(results, answer.tokens, answer.cut, answer.total, m.config.max_len - 1);
    if (answer.masks !== 1) {
      said.textContent = `Write exactly one [MASK] (found ${answer.masks}${answer.cut ? " in what was read" : ""}).`;
      return;
    }
    const list = element("ol", { className: "learnjax-live__predictions" });
    for (const { word, probability } of answer.predictions) {
      list.append(element("li", { textContent: `${word}: ${(100 * probability).toFixed(1)}%` }));
    }
    results.append(element("p", { textContent: "The model's five likeliest words:" }), list);
    said.textContent = `First: ${answer.predictions[0].word}.`;
  }));
}

function writeWidget(root) {
  const input = element("input", { type: "text", value: root.dataset.preset || "", autocomplete: "off", spellcheck: false });
  const temperature = slider("Temperature", { min: 0, max: 2, step: 0.1, value: 0,
    describe: (t) => (t === 0 ? "0 (greedy: always the likeliest word)" : t.toFixed(1)) });
  const topK = slider("Top-k", { min: 0, max: 50, step: 1, value: 0,
    describe: (k) => (k === 0 ? "0 (no limit)" : `the ${k} likeliest`) });
  const button = element("button", { type: "submit", className: "learnjax-live__button", textContent: "Write" });
  const buttons = [button];
  // The temperatures of the page's facts-vs-temperature chart, written into the page by the build.
  const chartTemperatures = () => root.dataset.temperatures.split(",").map(Number);
  const atChart = root.dataset.temperatures
    ? element("button", { type: "button", className: "learnjax-live__button", textContent: "The same prompt at the chart's temperatures" })
    : null;
  if (atChart) buttons.push(atChart);
  const said = status(root);
  const results = element("div", { className: "learnjax-live__results", ariaLive: "polite" });
  const form = element("form", { className: "learnjax-live__form" },
    [labelled("A prompt for the model to continue", input), temperature.field, topK.field,
      element("div", { className: "learnjax-live__buttons" }, buttons)]);
  root.replaceChildren(form, said, results);
  let seed = 0;
  const written = (m, t) => m.write(input.value, { maxNewTokens: 16, temperature: t, topK: Number(topK.input.value), seed: t > 0 ? ++seed : 0 });
  const prompt = (m, first) => {
    results.replaceChildren();
    showReading(results, first.promptTokens, first.cut, first.total, m.config.max_len - 2);
    return element("span", { className: "learnjax-live__prompt", textContent: input.value });
  };
  form.addEventListener("submit", running(said, async () => {
    const m = await model(root.dataset.model);
    const wrote = written(m, Number(temperature.input.value));
    results.append(element("p", { className: "learnjax-live__written" }, [prompt(m, wrote), " ", element("strong", { textContent: wrote.text })]));
    const ending = wrote.ended ? "it ended the text" : wrote.contextFull ? "the context is full" : "it reached 16 tokens";
    said.textContent = `Wrote ${wrote.tokens.length} tokens (${ending}), ${wrote.millisecondsPerToken.toFixed(1)} ms per token.`;
  }));
  atChart?.addEventListener("click", running(said, async () => {
    const m = await model(root.dataset.model);
    const lines = chartTemperatures().map((t) => ({ t, wrote: written(m, t) }));
    const shown = prompt(m, lines[0].wrote);
    const list = element("ul", { className: "learnjax-live__temperatures" });
    for (const { t, wrote } of lines) {
      const item = element("li", {}, [element("span", { className: "learnjax-live__temperature", textContent: `temperature ${t.toFixed(1)}:` }), " ",
        shown.cloneNode(true), " ", element("strong", { textContent: wrote.text })]);
      item.dataset.temperature = String(t);
      list.append(item);
    }
    results.append(list);
    said.textContent = `Wrote the prompt at ${lines.length} temperatures: ${lines.map(({ t }) => t.toFixed(1)).join(", ")}.`;
  }));
}

/** A background from white (weight 0) to dark blue (weight 1), and the text colour that reads on it. */
function shade(weight) {
  const mix = (from, to) => Math.round(from + (to - from) * weight);
  const rgb = [mix(255, 8), mix(255, 48), mix(255, 107)];
  const linear = rgb.map((c) => ((c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  const luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2];
  // Black or white, whichever contrasts more: never less than 4.5:1 on any shade.
  const text = (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) ? "#000" : "#fff";
  return { background: `rgb(${rgb.join(",")})`, color: text };
}

/** A table of one head's weights: a row per looking token, a column per token looked at, each cell in percent. */
function attentionTable(tokens, weights, layer, head) {
  const table = element("table", { className: "learnjax-live__attention" });
  table.append(element("caption", { textContent: `Layer ${layer + 1}, head ${head + 1}: the percentage of its attention each token (row) gives to each token (column); each row adds up to 100.` }));
  const header = element("tr", {}, [element("td")]);
  for (const token of tokens) header.append(element("th", { scope: "col", textContent: token }));
  table.append(element("thead", {}, [header]));
  const body = element("tbody");
  tokens.forEach((token, row) => {
    const cells = [element("th", { scope: "row", textContent: token })];
    weights[row].forEach((weight, column) => {
      const cell = element("td", { textContent: (100 * weight).toFixed(0) });
      Object.assign(cell.style, shade(weight));
      cell.dataset.weight = String(weight);
      cell.title = `${token} → ${tokens[column]}: ${(100 * weight).toFixed(1)}%`;
      cells.push(cell);
    });
    body.append(element("tr", {}, cells));
  });
  table.append(body);
  return table;
}

/** Choices 1..count in a labelled select. */
function choice(text, count) {
  const select = element("select");
  for (let i = 0; i < count; i++) select.append(element("option", { value: String(i), textContent: String(i + 1) }));
  return { field: labelled(text, select), select };
}

function attentionWidget(root) {
  const input = element("input", { type: "text", value: root.dataset.preset || "", autocomplete: "off", spellcheck: false });
  const button = element("button", { type: "submit", className: "learnjax-live__button", textContent: "Show the attention" });
  const said = status(root);
  const results = element("div", { className: "learnjax-live__results", ariaLive: "polite" });
  const form = element("form", { className: "learnjax-live__form" }, [labelled("A sentence to look inside", input), button]);
  const selectors = element("div", { className: "learnjax-live__selectors" });
  const heatmap = element("div", { className: "learnjax-live__scroll" });
  root.replaceChildren(form, selectors, said, results, heatmap);
  let shown = null; // the tokens and every layer's and head's weights of the last sentence
  let layer = null;
  let head = null;
  const draw = () => heatmap.replaceChildren(attentionTable(shown.tokens, shown.layers[layer.select.value][head.select.value],
    Number(layer.select.value), Number(head.select.value)));
  const run = async () => {
    said.textContent = "Loading the model…";
    try {
      const m = await model(root.dataset.model);
      if (!layer) {
        layer = choice("Layer", m.config.n_layers);
        head = choice("Head", m.config.n_heads);
        selectors.replaceChildren(layer.field, head.field);
        for (const select of [layer.select, head.select]) select.addEventListener("change", () => shown && draw());
      }
      const { ids, cut, total } = m.read(input.value, { masks: true });
      const tokens = ["[CLS]", ...ids.slice(1).map((id) => m.tokenizer.vocab[id])];
      shown = { tokens, layers: m.attention(ids) };
      results.replaceChildren();
      showReading(results, tokens.slice(1), cut, total, m.config.max_len - 1);
      draw();
      said.textContent = `Attention over ${tokens.length} tokens: pick a layer and a head.`;
    } catch (error) {
      said.textContent = `The model could not run: ${error.message}`;
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  run();
}

/** Several classifiers side by side on one message: each one's probability of each label. */
function classifyWidget(root) {
  const names = root.dataset.names.split(",");
  const models = root.dataset.models.split(",");
  const input = element("input", { type: "text", value: root.dataset.preset || "", autocomplete: "off", spellcheck: false });
  const button = element("button", { type: "submit", className: "learnjax-live__button", textContent: "Classify" });
  const said = status(root);
  const results = element("div", { className: "learnjax-live__results", ariaLive: "polite" });
  const form = element("form", { className: "learnjax-live__form" }, [labelled("A message to classify", input), button]);
  root.replaceChildren(form, said, results);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    said.textContent = "Loading the models…";
    try {
      const loaded = await Promise.all(models.map(model));
      const answers = loaded.map((m) => m.classify(input.value));
      const { ids, cut, total } = loaded[0].read(input.value);
      const labels = answers[0].labels.map(({ label }) => label);
      const header = element("tr", {}, [element("th", { scope: "col", textContent: "model" }),
        ...labels.map((label) => element("th", { scope: "col", textContent: `probability of ${label}` }))]);
      const rows = answers.map((answer, i) => element("tr", {}, [element("th", { scope: "row", textContent: names[i] }),
        ...answer.labels.map(({ probability }) => element("td", { textContent: `${(100 * probability).toFixed(1)}%` }))]));
      results.replaceChildren();
      showReading(results, ids.slice(1).map((id) => loaded[0].tokenizer.vocab[id]), cut, total, loaded[0].config.max_len - 1);
      results.append(element("table", { className: "learnjax-live__classified" }, [element("thead", {}, [header]), element("tbody", {}, rows)]));
      said.textContent = answers.map((answer, i) => {
        const best = answer.labels.reduce((a, b) => (b.probability > a.probability ? b : a));
        return `${names[i]}: ${best.label}`;
      }).join("; ") + ".";
    } catch (error) {
      said.textContent = `The model could not run: ${error.message}`;
    }
  });
}

/** Questions to an assistant, in the chat template; presets fill in a question and ask it. */
function askWidget(root) {
  const input = element("input", { type: "text", value: root.dataset.known || "", autocomplete: "off", spellcheck: false });
  const button = element("button", { type: "submit", className: "learnjax-live__button", textContent: "Ask" });
  const presets = [["known", "A question it learned about"], ["unknown", "A question about something it never read about"]]
    .filter(([key]) => root.dataset[key])
    .map(([key, text]) => {
      const preset = element("button", { type: "button", className: "learnjax-live__button", textContent: text });
      preset.dataset.preset = key;
      preset.addEventListener("click", () => {
        input.value = root.dataset[key];
        form.requestSubmit();
      });
      return preset;
    });
  const said = status(root);
  const results = element("div", { className: "learnjax-live__results", ariaLive: "polite" });
  const form = element("form", { className: "learnjax-live__form" },
    [labelled("A question for the assistant", input), element("div", { className: "learnjax-live__buttons" }, [button, ...presets])]);
  root.replaceChildren(form, said, results);
  form.addEventListener("submit", running(said, async () => {
    const m = await model(root.dataset.model);
    results.replaceChildren();
    if (!m.tokenizer.encode(input.value).length) {
      said.textContent = "Type a question first: it has no words.";
      return;
    }
    const answer = m.ask(input.value);
    showReading(results, answer.questionTokens, answer.cut, answer.total, answer.fits);
    results.append(element("dl", { className: "learnjax-live__chat" }, [
      element("dt", { textContent: "You" }), element("dd", { className: "learnjax-live__question", textContent: input.value }),
      element("dt", { textContent: "Assistant" }), element("dd", { className: "learnjax-live__answer", textContent: answer.text }),
    ]));
    said.textContent = `Answered in ${answer.tokens.length} tokens, ${answer.millisecondsPerToken.toFixed(1)} ms per token.`;
  }));
}

const WIDGETS = { "fill-mask": fillMaskWidget, write: writeWidget, attention: attentionWidget, classify: classifyWidget, ask: askWidget };

for (const root of document.querySelectorAll(".learnjax-live[data-widget]")) {
  const build = WIDGETS[root.dataset.widget];
  if (build) build(root);
}
