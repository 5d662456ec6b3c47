// The site's own trained models, run in the reader's browser.
//
// This is learnjax's Transformer (src/learnjax/models/transformer.py) written
// again in plain JavaScript, small enough to read in one sitting: token and
// position embeddings, pre-LayerNorm blocks (attention that sees the whole text,
// or only the tokens before, then a GELU MLP), the heads, and the output layer
// tied to the token embeddings. Its weights are what `learnjax export` writes:
// a JSON manifest and one little-endian float32 binary. Nothing is fetched from
// anywhere but the site itself, and the browser tests check that what it
// computes is what JAX computes (tests/test_live_models.py).
//
// JavaScript computes in float64, JAX here in float32: scores agree to about
// 1e-5, not bit for bit.

// ---------------------------------------------------------------- loading

/** Fetches an export (its manifest, then the binary it names) and builds the model. */
export async function loadModel(manifestUrl) {
  const manifestResponse = await fetch(manifestUrl);
  if (!manifestResponse.ok) throw new Error(`cannot load ${manifestUrl}: HTTP ${manifestResponse.status}`);
  const manifest = await manifestResponse.json();
  if (manifest.format !== "learnjax-web-model" || manifest.version !== 1) {
    throw new Error(`${manifestUrl} is not a learnjax web model (version 1)`);
  }
  const weightsUrl = new URL(manifest.weights.file, new URL(manifestUrl, location.href));
  const weightsResponse = await fetch(weightsUrl);
  if (!weightsResponse.ok) throw new Error(`cannot load ${weightsUrl}: HTTP ${weightsResponse.status}`);
  const buffer = await weightsResponse.arrayBuffer();
  if (buffer.byteLength !== manifest.weights.bytes) {
    throw new Error(`${weightsUrl} holds ${buffer.byteLength} bytes, the manifest says ${manifest.weights.bytes}`);
  }
  return new Model(manifest, buffer);
}

// ---------------------------------------------------------------- arithmetic

/** x (in) times the matrix W (in x out, row-major, as flax's kernel), plus b (out). */
function linear(x, layer) {
  const { kernel, bias } = layer;
  const n = bias.length;
  const y = Float64Array.from(bias);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    if (xi === 0) continue;
    const row = i * n;
    for (let j = 0; j < n; j++) y[j] += xi * kernel[row + j];
  }
  return y;
}

/** flax's LayerNorm: (x - mean) / sqrt(variance + epsilon), scaled and shifted. */
function layerNorm(x, norm, epsilon) {
  let mean = 0;
  for (const v of x) mean += v;
  mean /= x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) * (v - mean);
  variance /= x.length;
  const inverse = 1 / Math.sqrt(variance + epsilon);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = (x[i] - mean) * inverse * norm.scale[i] + norm.bias[i];
  return y;
}

/** GELU as the library computes it (`nnx.gelu`): its tanh approximation, or the exact erf form. */
function gelu(x, form) {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    y[i] = form === "tanh"
      ? 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))
      : 0.5 * v * (1 + erf(v / Math.SQRT2));
  }
  return y;
}

/** erf to about 1e-7 (Abramowitz and Stegun 7.1.26). */
function erf(x) {
  const sign = Math.sign(x);
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-x * x));
}

function add(a, b) {
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

/** Probabilities of scores (-Infinity scores get 0). */
export function softmax(scores) {
  let max = -Infinity;
  for (const s of scores) if (s > max) max = s;
  const p = new Float64Array(scores.length);
  let sum = 0;
  for (let i = 0; i < scores.length; i++) sum += (p[i] = Math.exp(scores[i] - max));
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return p;
}

/** h (D) times the token embeddings transposed (V x D): a score per vocabulary entry (tied weights). */
function tiedOutput(h, embedding, vocabSize) {
  const d = h.length;
  const scores = new Float64Array(vocabSize);
  for (let v = 0; v < vocabSize; v++) {
    let s = 0;
    const row = v * d;
    for (let i = 0; i < d; i++) s += h[i] * embedding[row + i];
    scores[v] = s;
  }
  return scores;
}

// ---------------------------------------------------------------- the model

export class Model {
  constructor(manifest, buffer) {
    this.manifest = manifest;
    this.kind = manifest.kind;
    this.config = manifest.config;
    this.epsilon = manifest.layer_norm_epsilon;
    this.gelu = manifest.gelu;
    this.special = manifest.special_tokens;
    this.labels = manifest.labels;
    this.tokenizer = manifest.tokenizer.kind === "subword"
      ? new WordPieceTokenizer(manifest.tokenizer.vocab)
      : new WordTokenizer(manifest.tokenizer.vocab);
    // Every parameter, a Float32Array over the binary, by its path in the library's model.
    const tensors = {};
    for (const [path, { offset, shape }] of Object.entries(manifest.tensors)) {
      tensors[path] = new Float32Array(buffer, offset, shape.reduce((a, b) => a * b, 1));
    }
    this.tensors = tensors;
    const root = { masked_lm: "encoder", classifier: "encoder", next_word_lm: "decoder", assistant: "decoder" }[this.kind];
    if (!root) throw new Error(`unknown model kind ${this.kind}`);
    this.causal = root === "decoder";
    const get = (path) => {
      if (!(path in tensors)) throw new Error(`the export has no parameter ${path}`);
      return tensors[path];
    };
    const linearAt = (path) => ({ kernel: get(`${path}.kernel`), bias: get(`${path}.bias`) });
    const normAt = (path) => ({ scale: get(`${path}.scale`), bias: get(`${path}.bias`) });
    this.tokenEmbedding = get(`${root}.token_embed.embedding`);
    this.positionEmbedding = get(`${root}.position_embed.embedding`);
    this.blocks = [];
    for (let i = 0; i < this.config.n_layers; i++) {
      const at = `${root}.blocks.${i}`;
      this.blocks.push({
        ln1: normAt(`${at}.ln1`), qkv: linearAt(`${at}.attn.qkv`), proj: linearAt(`${at}.attn.proj`),
        ln2: normAt(`${at}.ln2`), ff1: linearAt(`${at}.ff1`), ff2: linearAt(`${at}.ff2`),
      });
    }
    this.lnFinal = normAt(`${root}.ln_final`);
    if (this.kind === "masked_lm") {
      this.head = { transform: linearAt("transform"), ln: normAt("ln"), bias: get("bias") };
    } else if (this.kind === "classifier") {
      this.head = linearAt("head");
    }
  }

  /** The input vector of token `id` at `position`: its embedding plus its position's. */
  embed(id, position) {
    const d = this.config.d_model;
    const x = new Float64Array(d);
    for (let i = 0; i < d; i++) x[i] = this.tokenEmbedding[id * d + i] + this.positionEmbedding[position * d + i];
    return x;
  }

  /** The MLP half of a block: x + ff2(gelu(ff1(ln2(x)))). */
  feedForward(block, x) {
    return add(x, linear(gelu(linear(layerNorm(x, block.ln2, this.epsilon), block.ff1), this.gelu), block.ff2));
  }

  /**
   * Attention of one query over `count` keys and values (each a d_model vector
   * from the qkv layer), head by head; returns the heads' outputs side by side.
   */
  attend(q, keys, values, count, attentionOut = null) {
    const { d_model: d, n_heads: heads } = this.config;
    const dh = d / heads;
    const out = new Float64Array(d);
    for (let h = 0; h < heads; h++) {
      const scores = new Float64Array(count);
      for (let k = 0; k < count; k++) {
        let s = 0;
        for (let i = h * dh; i < (h + 1) * dh; i++) s += q[i] * keys[k][i];
        scores[k] = s / Math.sqrt(dh);
      }
      const weights = softmax(scores);
      if (attentionOut) attentionOut.push(weights);
      for (let k = 0; k < count; k++) {
        for (let i = h * dh; i < (h + 1) * dh; i++) out[i] += weights[k] * values[k][i];
      }
    }
    return out;
  }

  /**
   * The Transformer over token ids ([CLS] first): a vector per token, after the
   * final layer norm. Each token sees every token of the text, or with a causal
   * model only itself and those before it.
   */
  hidden(ids) {
    const d = this.config.d_model;
    let xs = ids.map((id, t) => this.embed(id, t));
    for (const block of this.blocks) {
      const qkv = xs.map((x) => linear(layerNorm(x, block.ln1, this.epsilon), block.qkv));
      const keys = qkv.map((v) => v.subarray(d, 2 * d));
      const values = qkv.map((v) => v.subarray(2 * d, 3 * d));
      xs = xs.map((x, t) => {
        const seen = this.causal ? t + 1 : ids.length; // the causal mask: keys up to the query's position
        const attended = this.attend(qkv[t].subarray(0, d), keys, values, seen);
        return this.feedForward(block, add(x, linear(attended, block.proj)));
      });
    }
    return xs.map((x) => layerNorm(x, this.lnFinal, this.epsilon));
  }

  /** Scores over the vocabulary at every position: for the hidden word (masked model) or the next one. */
  logits(ids) {
    const vocab = this.config.vocab_size;
    return this.hidden(ids).map((h) => {
      if (this.kind !== "masked_lm") return tiedOutput(h, this.tokenEmbedding, vocab);
      const { transform, ln, bias } = this.head;
      const scores = tiedOutput(layerNorm(gelu(linear(h, transform), this.gelu), ln, this.epsilon), this.tokenEmbedding, vocab);
      for (let v = 0; v < vocab; v++) scores[v] += bias[v];
      return scores;
    });
  }

  /** A text as the model reads it: [CLS] and its tokens, cut to the context (`cut` says whether). */
  read(text, { masks = false, room = 0 } = {}) {
    const words = this.tokenizer.encode(text, { masks });
    const fits = this.config.max_len - 1 - room;
    return { ids: [this.special["[CLS]"], ...words.slice(0, fits)], cut: words.length > fits, total: words.length };
  }

  /** The `topK` likeliest tokens for the [MASK] in `text` (as the library's fill_mask). */
  fillMask(text, topK = 5) {
    const { ids, cut, total } = this.read(text, { masks: true });
    const maskId = this.special["[MASK]"];
    const masks = ids.filter((id) => id === maskId).length;
    const tokens = ids.slice(1).map((id) => this.tokenizer.vocab[id]);
    if (masks !== 1) return { tokens, cut, total, masks, predictions: [] };
    const scores = this.logits(ids)[ids.indexOf(maskId)];
    for (let v = 0; v < Object.keys(this.special).length; v++) scores[v] = -Infinity; // a special token is never an answer
    const probs = softmax(scores);
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b).slice(0, topK);
    return { tokens, cut, total, masks, predictions: order.map((id) => ({ word: this.tokenizer.vocab[id], probability: probs[id] })) };
  }

  /** A classifier's probability of each label for `text` (its first window, as the library's "first"). */
  classify(text) {
    const { ids, cut } = this.read(text);
    const scores = linear(this.hidden(ids)[0], this.head);
    const probs = softmax(scores);
    return { cut, labels: this.labels.map((label, i) => ({ label, probability: probs[i] })) };
  }

  /**
   * The attention weights of every layer and head over `ids`: [layer][head][query][key].
   */
  attention(ids) {
    const d = this.config.d_model;
    let xs = ids.map((id, t) => this.embed(id, t));
    const layers = [];
    for (const block of this.blocks) {
      const qkv = xs.map((x) => linear(layerNorm(x, block.ln1, this.epsilon), block.qkv));
      const keys = qkv.map((v) => v.subarray(d, 2 * d));
      const values = qkv.map((v) => v.subarray(2 * d, 3 * d));
      const perQuery = [];
      xs = xs.map((x, t) => {
        const weights = [];
        const attended = this.attend(qkv[t].subarray(0, d), keys, values, this.causal ? t + 1 : ids.length, weights);
        perQuery.push(weights);
        return this.feedForward(block, add(x, linear(attended, block.proj)));
      });
      layers.push([...Array(this.config.n_heads).keys()].map((h) => perQuery.map((q) => Array.from(q[h]))));
    }
    return layers;
  }

  // ------------------------------------------------------------ writing

  /**
   * The chat template (the library's chat_ids): [CLS] [USER] question [ASSISTANT],
   * the answer being the model's to write. The question is cut so that
   * `maxNewTokens` still fit in the context (`cut` says whether).
   */
  chat(question, maxNewTokens) {
    const words = this.tokenizer.encode(question);
    const fits = this.config.max_len - 3 - maxNewTokens;
    const { "[CLS]": cls, "[USER]": user, "[ASSISTANT]": assistant } = this.special;
    return { ids: [cls, user, ...words.slice(0, fits), assistant], cut: words.length > fits, total: words.length, fits };
  }

  /** An assistant's answer to `question` in the chat template (greedy by default, as the library's `ask`). */
  ask(question, { maxNewTokens = 10, ...sampling } = {}) {
    const read = this.chat(question, maxNewTokens);
    const questionTokens = read.ids.slice(2, -1).map((id) => this.tokenizer.vocab[id]);
    return { ...this.continueIds(read, { maxNewTokens, ...sampling }), questionTokens, fits: read.fits };
  }

  /** Continues `prompt` ([CLS] and its tokens, cut to leave room for one token); see continueIds. */
  write(prompt, options = {}) {
    const read = this.read(prompt, { room: 1 });
    return { ...this.continueIds(read, options), promptTokens: read.ids.slice(1).map((id) => this.tokenizer.vocab[id]) };
  }

  /**
   * Continues the token ids `ids` one token at a time, reading only the newest
   * token at each step: the keys and values of the earlier ones are kept (a KV
   * cache). temperature 0 is greedy; topK (0: no limit) and topP (1: no limit)
   * as the library's Sampling. Stops at [END], after maxNewTokens, or when the
   * context is full.
   */
  continueIds({ ids, cut, total }, { maxNewTokens = 16, temperature = 0, topK = 0, topP = 1, seed = 0 } = {}) {
    if (!this.causal) throw new Error("only a next-word model writes");
    const random = mulberry32(seed);
    const cache = this.blocks.map(() => ({ keys: [], values: [] }));
    let scores = null;
    const started = performance.now();
    ids.forEach((id, position) => { scores = this.step(id, position, cache); });
    const written = [];
    const end = this.special["[END]"];
    const steps = Math.min(maxNewTokens, this.config.max_len - ids.length);
    const writeStarted = performance.now();
    for (let i = 0; i < steps; i++) {
      const token = sampleNext(scores, { temperature, topK, topP, random, neverWritten: this.neverWritten() });
      written.push(token);
      if (token === end) break;
      if (i + 1 < steps) scores = this.step(token, ids.length + i, cache);
    }
    const now = performance.now();
    const tokens = written.map((id) => this.tokenizer.vocab[id]);
    const words = written.filter((id) => id !== end).map((id) => this.tokenizer.vocab[id]);
    return {
      cut, total, tokens,
      text: this.tokenizer.join(words), ended: written.includes(end), contextFull: written.length === steps && !written.includes(end) && steps < maxNewTokens,
      milliseconds: now - started, millisecondsPerToken: written.length ? (now - writeStarted) / written.length : 0,
    };
  }

  /** Reads token `id` at `position` into the cache; returns the scores of the token after it. */
  step(id, position, cache) {
    const d = this.config.d_model;
    let x = this.embed(id, position);
    this.blocks.forEach((block, layer) => {
      const qkv = linear(layerNorm(x, block.ln1, this.epsilon), block.qkv);
      cache[layer].keys.push(qkv.subarray(d, 2 * d));
      cache[layer].values.push(qkv.subarray(2 * d, 3 * d));
      const attended = this.attend(qkv.subarray(0, d), cache[layer].keys, cache[layer].values, position + 1);
      x = this.feedForward(block, add(x, linear(attended, block.proj)));
    });
    return tiedOutput(layerNorm(x, this.lnFinal, this.epsilon), this.tokenEmbedding, this.config.vocab_size);
  }

  /** The special tokens a model never writes: all but [END] (the library's NEVER_WRITTEN). */
  neverWritten() {
    return Object.entries(this.special).filter(([token]) => token !== "[END]").map(([, id]) => id);
  }
}

// ---------------------------------------------------------------- sampling

/** A small seeded random number generator: the same seed, the same text. */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The next token from the scores, as the library's sample_next: greedy (the
 * first best) at temperature 0; else scores / temperature, only the topK best
 * and the fewest whose probabilities reach topP kept, then drawn at random.
 */
export function sampleNext(logits, { temperature = 0, topK = 0, topP = 1, random = Math.random, neverWritten = [] } = {}) {
  const scores = Float64Array.from(logits);
  for (const id of neverWritten) scores[id] = -Infinity;
  if (!(temperature > 0)) {
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
    return best;
  }
  const scaled = scores.map((s) => s / temperature);
  if (topK > 0 || topP < 1) {
    const ranked = Array.from(scaled).sort((a, b) => b - a);
    const probs = softmax(ranked);
    let before = 0;
    let threshold = Infinity;
    for (let rank = 0; rank < ranked.length; rank++) {
      const keep = (topK <= 0 || rank < topK) && before < topP; // the best token is always kept
      if (keep) threshold = Math.min(threshold, ranked[rank]);
      before += probs[rank];
    }
    for (let i = 0; i < scaled.length; i++) if (scaled[i] < threshold) scaled[i] = -Infinity;
  }
  const probs = softmax(scaled);
  let r = random();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r < 0) return i;
  }
  return probs.findLastIndex((p) => p > 0);
}

// ---------------------------------------------------------------- tokenizers

// A word: letters and digits, each possibly followed by combining accents, with
// inner apostrophes or hyphens; or any single other visible character. As the
// library's split_words: lower-cased, Unicode NFC; [MASK] is the mask only in a
// text to fill in.
const LETTERS = "(?:[\\p{L}\\p{N}][\\u0300-\\u036f]*)+";
const WORD = `${LETTERS}(?:['’-]${LETTERS})*|[^\\p{L}\\p{N}_\\s]`;
const WORD_RE = new RegExp(WORD, "gu");
const WORD_OR_MASK_RE = new RegExp(`\\[mask\\]|${WORD}`, "gu");

export function splitWords(text, { masks = false } = {}) {
  const normalized = text.toLowerCase().normalize("NFC");
  const words = normalized.match(masks ? WORD_OR_MASK_RE : WORD_RE) || [];
  return masks ? words.map((w) => (w === "[mask]" ? "[MASK]" : w)) : words;
}

/** Whole words; any word outside the vocabulary is [UNK]. */
export class WordTokenizer {
  constructor(vocab) {
    this.vocab = vocab;
    this.ids = new Map(vocab.map((word, id) => [word, id]));
    this.unknown = this.ids.get("[UNK]");
  }

  encode(text, { masks = false } = {}) {
    return splitWords(text, { masks }).map((w) => this.ids.get(w) ?? this.unknown);
  }

  /** Words as text: a space between words, none before punctuation (the library's join_words). */
  join(words) {
    return words.join(" ").replace(/ ([.,!?;:])/g, "$1");
  }
}

// BERT's pre-tokenizer splits at spaces and makes each punctuation mark a token of its own.
const PUNCTUATION_RE = /[\p{P}!-/:-@[-`{-~]/u;

/** WordPiece, as the library's SubwordTokenizer: the longest piece first, "##" marking a piece that continues a word. */
export class WordPieceTokenizer extends WordTokenizer {
  encode(text, { masks = false } = {}) {
    let lowered = text.toLowerCase();
    const parts = masks ? lowered.split("[mask]") : [lowered];
    const ids = [];
    parts.forEach((part, i) => {
      if (i > 0) ids.push(this.ids.get("[MASK]"));
      for (const word of preTokenize(part.normalize("NFC"))) ids.push(...this.pieces(word));
    });
    return ids;
  }

  pieces(word) {
    const chars = Array.from(word);
    if (chars.length > 100) return [this.unknown];
    const ids = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length;
      let found;
      for (; end > start; end--) {
        const piece = (start > 0 ? "##" : "") + chars.slice(start, end).join("");
        if (this.ids.has(piece)) { found = this.ids.get(piece); break; }
      }
      if (found === undefined) return [this.unknown];
      ids.push(found);
      start = end;
    }
    return ids;
  }

  join(pieces) {
    return pieces.reduce((text, piece) => (piece.startsWith("##") && piece.length > 2
      ? text + piece.slice(2) : (text ? `${text} ${piece}` : piece)), "")
      .replace(/ ([.,!?])/g, "$1").replace(/ ' /g, "'").replace(/ n't/g, "n't").replace(/ '(m|s|ve|re)\b/g, "'$1");
  }
}

function preTokenize(text) {
  const words = [];
  for (const chunk of text.split(/\s+/u)) {
    let word = "";
    for (const c of chunk) {
      if (PUNCTUATION_RE.test(c)) {
        if (word) words.push(word);
        words.push(c);
        word = "";
      } else {
        word += c;
      }
    }
    if (word) words.push(word);
  }
  return words;
}
