// textgen in the browser: the sampling loop of textgen.export.litert_sampler, in JavaScript,
// around the exported model's one-token `step` (LiteRT.js, vendored beside this file).
// Same tokens, same sampling rules and the same counter-based noise as textgen, so
// greedy text (and, float rounding aside, seeded text) equals `textgen sample`.
import {loadLiteRt, loadAndCompile, Tensor} from './litert/core/index.js';
import {PieceReader} from './sentencepiece.js';
import {GAP, Inclusion, includeTokens} from './inclusion.js';
import {healMask, healSplit} from './healing.js';

const UNK_ID = 0;
const MAX_EXCLUDE_CHARS = 32;  // the longest excluded string (characters; 2 UTF-16 units each, at most)
const MAX_INCLUDE = 4;  // texts one sample may be asked to include

// -- the noise: textgen.generate.rules.seeded_draw, in 32-bit integer arithmetic --------------
function mix32(h) {
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function low32(x) {  // x mod 2**32 for a non-negative BigInt or number
  return Number(BigInt.asUintN(32, BigInt(x)));
}

function gumbelNoise(seed, stream, step, vocabSize) {
  const seedBig = BigInt.asUintN(64, BigInt(seed));
  let key = mix32(low32(BigInt(step) * 0x9E3779B9n + 0x7F4A7C15n));
  key = mix32((key ^ low32(stream)) >>> 0);
  key = mix32((key ^ Number(seedBig >> 32n)) >>> 0);
  key = mix32((key ^ Number(BigInt.asUintN(32, seedBig))) >>> 0);
  const noise = new Float32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const token = mix32(Math.imul(id, 0x61c88647) >>> 0);
    const bits = mix32((key ^ token) >>> 0) >>> 9;
    const uniform = Math.fround((bits + 0.5) / 8388608);
    noise[id] = Math.fround(-Math.log(Math.fround(-Math.log(uniform))));
  }
  return noise;
}

// -- choosing a token: textgen.generate.rules.pipeline.TokenRules for one row, rule by rule ----
const SMALLEST_NORMAL = 1.1754943508222875e-38;  // float32's: below it, temperature and top-p
// read as float32 kernels read them (rules/temperature.py, rules/truncation.py)

// The repetition controls (rules/repetition.py): CTRL's penalty over the last `window` tokens,
// then the n-gram bans; a row whose every real token they would exclude keeps its logits.
function penalize(logits, history, penalty, window) {
  const seen = new Set(history.slice(Math.max(history.length - window, 0)).filter((i) => i >= 0));
  const p = Math.fround(penalty);
  const inverse = Math.fround(1 / p);
  return logits.map((x, id) => (seen.has(id) ? Math.fround(x * (x > 0 ? inverse : p)) : x));
}

function banNgrams(logits, history, ngram) {
  const before = ngram - 1;
  const prefix = history.slice(history.length - before);
  if (before > 0 && prefix.some((i) => i < 0)) return logits;
  const out = Float32Array.from(logits);
  for (let i = 0; i + before < history.length; i++) {
    let same = true;
    for (let k = 0; k < before && same; k++) same = history[i + k] === prefix[k];
    if (same && history[i + before] >= 0) out[history[i + before]] = -Infinity;
  }
  return out;
}

function controlRepetition(logits, history, s) {
  let controlled = logits;
  if (s.repetitionPenalty !== 1) {
    controlled = penalize(controlled, history, s.repetitionPenalty, s.repetitionWindow);
  }
  if (s.noRepeatNgram > 0) controlled = banNgrams(controlled, history, s.noRepeatNgram);
  const allowed = controlled.some((x, id) => id !== UNK_ID && x > -Infinity);
  return allowed ? controlled : logits;
}

function topFilter(scaled, topK, topP) {
  topP = Math.max(topP, SMALLEST_NORMAL);
  const ranked = Float32Array.from(scaled).sort().reverse();
  const kMin = topK > 0 ? ranked[Math.min(topK - 1, ranked.length - 1)] : -Infinity;
  let total = 0;
  const probs = new Float64Array(ranked.length);
  for (let i = 0; i < ranked.length; i++) {
    if (ranked[i] < kMin) ranked[i] = -Infinity;
    probs[i] = Math.exp(ranked[i] - ranked[0]);
    total += probs[i];
  }
  let before = 0;
  let pMin = Infinity;
  for (let i = 0; i < ranked.length; i++) {
    const p = Math.fround(probs[i] / total);
    if (before < topP || topP >= 1) pMin = Math.min(pMin, ranked[i]);
    before = Math.fround(before + p);
  }
  const floor = Math.max(kMin, pMin);
  return scaled.map((x) => (x >= floor ? x : -Infinity));
}

// The checks on candidates (rules/checks.py), here the excluded strings (rules/exclusion.py):
// the best token unless it would complete an excluded string (the completion's `tail`, then
// the token's text); then the CANDIDATES best, best first; -1 when none is allowed (the end).
const CANDIDATES = 16;

function chooseChecked(scores, rejects) {
  let best = 0;
  for (let id = 1; id < scores.length; id++) if (scores[id] > scores[best]) best = id;
  if (!rejects(best)) return best;
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
  for (const id of order.slice(0, CANDIDATES)) {
    if (scores[id] > -Infinity && !rejects(id)) return id;
  }
  return -1;
}

function choose(logits, s, step, history, rejects, unwritten, inclusion, prev) {
  const forced = inclusion ? inclusion.forced(prev) : null;
  if (forced !== null) {  // a text begun is written on; the deadline writes one
    inclusion.advance(forced, prev, true);
    return forced;
  }
  const id = drawn(logits, s, step, history, rejects, unwritten, inclusion, prev);
  if (inclusion && id >= 0) inclusion.advance(id, prev, false);
  return id;
}

function drawn(logits, s, step, history, rejects, unwritten, inclusion, prev) {
  if (unwritten.length) {  // (rules/unwritten.py: a byte piece for part of a character)
    logits = Float32Array.from(logits);
    for (const id of unwritten) logits[id] = -Infinity;
  }
  if (s.repetitionPenalty !== 1 || s.noRepeatNgram > 0) logits = controlRepetition(logits, history, s);
  const drawn = Math.fround(s.temperature) >= SMALLEST_NORMAL;
  const inverse = Math.fround(drawn ? 1 / Math.fround(s.temperature) : 1);
  let scaled = logits.map((x) => Math.fround(x * inverse));
  scaled[UNK_ID] = -Infinity;
  if (s.topK > 0 || s.topP < 1) scaled = topFilter(scaled, s.topK, s.topP);
  if (inclusion) scaled = inclusion.adjust(scaled, prev);
  const noise = drawn ? gumbelNoise(s.seed, 0, step, scaled.length) : null;
  const scores = noise ? scaled.map((x, id) => Math.fround(x + noise[id])) : scaled;
  return chooseChecked(scores, rejects);
}

// -- text <-> tokens ---------------------------------------------------------------------
export class Vocabulary {
  constructor(meta, vocab) {
    this.meta = meta;
    this.tokens = ['[UNK]', ...vocab.tokens];
    this.ids = new Map(vocab.tokens.map((t, i) => [t, i + 1]));
    this.wordPattern = new RegExp(meta.word_pattern, 'gu');
    this.reader = meta.reader ? new PieceReader(meta.reader) : null;  // subword pieces
    // tokens never written: no text of their own (rules/unwritten.py)
    this.unwritten = this.tokens.flatMap((t, id) => (id && t === '' ? [id] : []));
  }

  encode(text) {
    text = text.replace(/\r\n?/g, '\n');
    if (this.meta.lowercase) text = text.toLowerCase();
    if (this.reader) return this.reader.encode(text);
    const pieces = this.meta.level === 'char' ? Array.from(text) : text.match(this.wordPattern) || [];
    return pieces.map((t) => this.ids.get(t) ?? UNK_ID);
  }

  piece(prev, id) {
    const glued = this.meta.glue_right[prev] || this.meta.glue_left[id];
    return (glued ? '' : ' ') + this.tokens[id];
  }
}

const MARKERS = /[\u{F0000}-\u{F10FF}]/gu;  // item and label markers: never shown

function overlap(text, stop) {  // the longest end of text that starts stop
  for (let size = Math.min(text.length, stop.length - 1); size > 0; size--) {
    if (stop.startsWith(text.slice(-size))) return size;
  }
  return 0;
}

// -- the generator ------------------------------------------------------------------------
export class Generator {
  static async load(base = '.') {
    await loadLiteRt(`${base}/litert/wasm/`);
    const [meta, vocab] = await Promise.all(
      ['textgen.json', 'vocab.json'].map((f) => fetch(`${base}/${f}`).then((r) => r.json())));
    const model = await loadAndCompile(`${base}/model.tflite`, {accelerator: 'wasm'});
    return new Generator(model, meta, new Vocabulary(meta, vocab));
  }

  constructor(model, meta, vocab) {
    this.model = model;
    this.meta = meta;
    this.vocab = vocab;
  }

  async step(id, state) {
    const inputs = {
      ids: new Tensor(new Int32Array([id]), [1]),
      state: new Tensor(state, [1, this.meta.state_size]),
    };
    const outputs = await this.model.run('step', inputs);
    const logits = Float32Array.from(outputs.logits.toTypedArray());
    const next = Float32Array.from(outputs.state.toTypedArray());
    for (const t of [...Object.values(inputs), ...Object.values(outputs)]) t.delete();
    return [logits, next];
  }

  // Yields the completion of `prompt` piece by piece; `settings` as textgen sample's.
  async *stream(prompt, settings) {
    const d = this.meta.defaults;
    const s = {
      temperature: settings.temperature ?? d.temperature,
      topK: settings.topK ?? d.top_k,
      topP: settings.topP ?? d.top_p,
      seed: settings.seed ?? 0,
      repetitionPenalty: settings.repetitionPenalty ?? d.repetition_penalty ?? 1,
      repetitionWindow: settings.repetitionWindow ?? d.repetition_window ?? 64,
      noRepeatNgram: settings.noRepeatNgram ?? d.no_repeat_ngram ?? 0,
      exclude: (settings.exclude ?? []).filter((text) => text !== ''),
      include: (settings.include ?? []).filter((text) => text !== ''),
    };
    checkTexts('include', s.include, MAX_INCLUDE);
    const clash = s.include.find((i) => s.exclude.some((e) => i.includes(e)));
    if (clash !== undefined) throw new Error(`include "${clash}" holds an excluded text`);
    const length = Math.min(settings.length ?? d.length, d.max_new_tokens_cap);
    let prefix = this.meta.item_start;
    if (settings.label) prefix += this.meta.labels[settings.label] ?? '';
    // healed where the prompt ends inside a word (not with excluded strings, as textgen)
    const heals = this.meta.heals && !s.exclude.length && !s.include.length;
    const heal = (read) => (heals ? healSplit(this.vocab.tokens, read) : [read, []]);
    const [prompted, healed] = heal(this.vocab.encode(prefix + prompt));
    const ids = [this.meta.start_id, ...prompted];
    let state = new Float32Array(this.meta.state_size);
    let logits;
    for (const id of ids) [logits, state] = await this.step(id, state);
    let backedOff = healed.map((id) => this.vocab.tokens[id]).join('');
    if (backedOff) logits = healMask(this.vocab.tokens, logits, backedOff);
    // Label guidance: the prompt read again without its label (the twin), as textgen does.
    const strength = settings.label ? settings.labelStrength ?? d.label_strength ?? 1 : 1;
    let twin = null;
    let twinLogits;
    if (strength !== 1) {
      twin = new Float32Array(this.meta.state_size);
      const plain = [this.meta.start_id, ...heal(this.vocab.encode(this.meta.item_start + prompt))[0]];
      for (const id of plain) [twinLogits, twin] = await this.step(id, twin);
    }
    let prev = ids[ids.length - 1];
    // the last tokens read and drawn, oldest first (-1: none yet), for the repetition controls
    const size = this.meta.repetition_history;  // REPETITION_HISTORY
    const history = [...new Array(size).fill(-1), ...ids].slice(-size);
    let pending = '';
    let tail = '';  // the completion's last characters, for the excluded strings
    const rejects = (id) => {
      const text = tail + this.vocab.piece(prev, id);
      return s.exclude.some((excluded) => text.includes(excluded));
    };
    let inclusion = null;
    if (s.include.length) {
      const piece = (p, id) => this.vocab.piece(p, id);
      const tokensOf = (text) => includeTokens(text, (t) => this.vocab.encode(t), piece, UNK_ID);
      const space = this.vocab.tokens.indexOf(' ');
      inclusion = new Inclusion(s.include, tokensOf, piece, length, prefix + prompt,
        space > 0 ? space : null, GAP[space > 0 ? 'char' : 'word']);
    }
    this.drawn = 0;  // tokens drawn so far (the page's tokens/s)
    for (let t = 0; t < length; t++) {
      const scored = twin ? guided(logits, twinLogits, strength) : logits;
      const id = choose(scored, s, t, history, rejects, this.vocab.unwritten, inclusion, prev);
      if (id < 0) break;  // every candidate would complete an excluded string: the end
      tail = (tail + this.vocab.piece(prev, id)).slice(-2 * MAX_EXCLUDE_CHARS);
      history.shift();
      history.push(id);
      this.drawn += 1;
      pending += this.vocab.piece(prev, id).slice(backedOff.length);
      backedOff = '';
      const cuts = d.stop.map((stop) => pending.indexOf(stop)).filter((i) => i >= 0);
      if (cuts.length) {
        yield pending.slice(0, Math.min(...cuts)).replace(MARKERS, '');
        return;
      }
      const keep = Math.max(0, ...d.stop.map((stop) => overlap(pending, stop)));
      const ready = pending.slice(0, pending.length - keep).replace(MARKERS, '');
      pending = pending.slice(pending.length - keep);
      if (ready) yield ready;
      [logits, state] = await this.step(id, state);
      if (twin) [twinLogits, twin] = await this.step(id, twin);
      prev = id;
    }
    if (pending) yield pending.replace(MARKERS, '');
  }
}

function checkTexts(option, texts, most) {
  for (const text of texts) {
    if (Array.from(text).length > MAX_EXCLUDE_CHARS) {
      throw new Error(`${option} texts may have at most ${MAX_EXCLUDE_CHARS} characters, got "${text}"`);
    }
  }
  if (texts.length > most) throw new Error(`at most ${most} ${option} texts, got ${texts.length}`);
}

// Label guidance's logits: unlabelled + strength x (labelled - unlabelled), each operation
// rounded to float32 as TensorFlow and NumPy compute it.
function guided(labelled, unlabelled, strength) {
  const s = Math.fround(strength);
  const out = new Float32Array(labelled.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = unlabelled[i] + Math.fround(s * Math.fround(labelled[i] - unlabelled[i]));
  }
  return out;
}

// -- the page -----------------------------------------------------------------------------
function read(id, parse) {
  const value = document.getElementById(id).value;
  return value === '' ? undefined : parse(value);
}

async function main() {
  const output = document.getElementById('output');
  const status = document.getElementById('status');
  const params = new URLSearchParams(location.search);
  for (const [param, id] of [['prompt', 'prompt'], ['temperature', 'temperature'],
      ['top_k', 'top-k'], ['top_p', 'top-p'], ['length', 'length'], ['seed', 'seed'],
      ['label', 'label'], ['label_strength', 'label-strength'],
      ['repetition_penalty', 'repetition-penalty'], ['repetition_window', 'repetition-window'],
      ['no_repeat_ngram', 'no-repeat-ngram']]) {
    if (params.has(param)) document.getElementById(id).value = params.get(param);
  }
  for (const name of ['exclude', 'include']) {
    if (params.has(name)) document.getElementById(name).value = params.getAll(name).join('\n');
  }
  status.textContent = 'loading the model...';
  const started = performance.now();
  const generator = await Generator.load('.');
  const labels = document.getElementById('label');
  for (const name of Object.keys(generator.meta.labels)) labels.add(new Option(name, name));
  if (params.has('label')) labels.value = params.get('label');
  document.getElementById('label-row').hidden = !Object.keys(generator.meta.labels).length;
  const d = generator.meta.defaults;
  document.getElementById('temperature').placeholder = d.temperature;
  document.getElementById('length').placeholder = d.length;
  status.textContent = `model loaded in ${((performance.now() - started) / 1000).toFixed(1)} s`;
  const button = document.getElementById('generate');

  async function generate() {
    button.disabled = true;
    output.removeAttribute('data-done');
    const prompt = document.getElementById('prompt').value;
    const settings = {
      temperature: read('temperature', parseFloat), topK: read('top-k', (v) => parseInt(v, 10)),
      topP: read('top-p', parseFloat), length: read('length', (v) => parseInt(v, 10)),
      seed: read('seed', (v) => parseInt(v, 10)) ?? Math.floor(Math.random() * 2 ** 31),
      label: labels.value || undefined,
      labelStrength: read('label-strength', parseFloat),
      repetitionPenalty: read('repetition-penalty', parseFloat),
      repetitionWindow: read('repetition-window', (v) => parseInt(v, 10)),
      noRepeatNgram: read('no-repeat-ngram', (v) => parseInt(v, 10)),
      exclude: document.getElementById('exclude').value.split('\n'),
      include: document.getElementById('include').value.split('\n'),
    };
    output.textContent = prompt;
    output.removeAttribute('data-error');
    const begun = performance.now();
    try {
      for await (const piece of generator.stream(prompt, settings)) {
        output.textContent += piece;
        const seconds = (performance.now() - begun) / 1000;
        status.textContent =
          `${generator.drawn} tokens, ${Math.round(generator.drawn / seconds)} tokens/s, ` +
          `seed ${settings.seed}`;
      }
    } catch (error) {  // a setting the run cannot honour: one line, as textgen says it
      status.textContent = `error: ${error.message || error}`;
      output.setAttribute('data-error', String(error.message || error));
      button.disabled = false;
      return;
    }
    const seconds = (performance.now() - begun) / 1000;
    output.dataset.tokensPerSecond = String(generator.drawn / seconds);
    output.setAttribute('data-done', '1');
    button.disabled = false;
  }

  button.addEventListener('click', generate);
  button.disabled = false;
  if (params.get('autorun') === '1') generate();
}

if (typeof document !== 'undefined') {
  main().catch((error) => {
    document.getElementById('status').textContent = `error: ${error.message || error}`;
    document.getElementById('output').setAttribute('data-error', String(error));
  });
}
