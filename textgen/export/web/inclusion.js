// Included texts (textgen.generate.rules.inclusion, a line-by-line port of its NumPy form):
// every completion holds each text, placed where the model finds it likely. Per row: the
// texts still owed; `adjust` gives an owed text's first token at least its placement floor
// (a uniform chance over the places left, moved by how much the model likes it there against
// its mean), `forced` writes a text begun and meets the deadline, `advance` strikes the texts
// the completion holds. Float64 arithmetic as NumPy's, sums pairwise as NumPy's `sum`.

export const GAP = {char: 6, word: 1};  // tokens between places a text may start
const FLOAT32_MAX = 3.4028234663852886e38;
const ALNUM = /^[\p{L}\p{N}]$/u;

const isAlnum = (text) => text !== undefined && ALNUM.test(text);
const firstChar = (text) => Array.from(text)[0];
const lastChar = (text) => Array.from(text).slice(-1)[0];

// numpy's pairwise summation of a float64 array (its `np.sum`: the first element, then the
// pairwise sum of the rest), so the rule's probabilities are NumPy's to the last bit
function pairwise(a, start, n) {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= 128) {
    const r = a.slice(start, start + 8);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let k = 0; k < 8; k++) r[k] += a[start + i + k];
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return pairwise(a, start, half) + pairwise(a, start + half, n - half);
}

export function numpySum(a) {
  return a.length ? a[0] + pairwise(a, 1, a.length - 1) : 0;
}

// The token ids that write `text`, or an Error saying why the run cannot (include_tokens).
export function includeTokens(text, encode, piece, unk) {
  const ids = encode(text);
  if (!ids.length || ids.includes(unk)) throw new Error(`include "${text}": the run has no tokens that write it`);
  const written = ids.map((id, i) => piece(i ? ids[i - 1] : ids[0], id)).join('');
  if (!written.includes(text)) {
    throw new Error(`include "${text}": the run writes it as "${written.trim()}" (lowercased or spaced as its tokens are); give it so`);
  }
  return ids;
}

export class Inclusion {
  constructor(texts, tokensOf, piece, length, before, space, gap) {
    this.texts = texts;
    this.piece = piece;
    this.space = space;
    this.gap = gap;
    this.tokens = texts.map(tokensOf);
    this.owed = texts.map((_, i) => i);
    this.queue = [];
    this.writing = -1;
    this.completion = '';
    this.last = lastChar(before);
    this.remaining = length;
    this.seen = texts.map(() => [0, 0]);  // each text's first token: sum of p, starts
    if (this.need() > length) {
      throw new Error(`include needs ${this.need()} tokens to write every text, more than length ${length}`);
    }
  }

  glues(index, prev) {
    const piece = this.piece(prev, this.tokens[index][0]);
    return isAlnum(firstChar(piece)) && isAlnum(this.last);
  }

  need() {
    const space = this.space !== null ? 1 : 0;
    return this.owed.reduce((sum, i) => sum + this.tokens[i].length + space, 0);
  }

  forced(prev) {
    if (this.queue.length) return this.queue.shift();
    if (this.owed.length && this.remaining <= this.need()) {
      const first = this.owed[0];
      this.queue = [...this.tokens[first]];
      this.writing = first;
      if (this.space !== null && this.glues(first, prev)) return this.space;
      return this.queue.shift();
    }
    return null;
  }

  adjust(scores, prev) {
    const spare = this.remaining - this.need();
    const floor = 1 / (1 + spare / this.gap);
    const out = Float32Array.from(scores);
    const finite = Float64Array.from(Array.from(scores).filter((x) => Number.isFinite(x)));
    if (!finite.length) return out;
    const top = finite.reduce((a, b) => Math.max(a, b));
    const total = top + Math.log(numpySum(finite.map((x) => Math.exp(x - top))));
    for (const index of this.owed) {
      if (this.glues(index, prev)) continue;
      const token = this.tokens[index][0];
      const p = Math.exp(scores[token] - total);
      const seen = this.seen[index];
      seen[0] += p;
      seen[1] += 1;
      const meanP = seen[0] / seen[1];
      const wanted = meanP > 0 ? Math.min(1, (floor * p) / meanP) : 0;
      if (wanted <= p || p >= 1) continue;
      const rest = total + Math.log1p(-p);
      const lowest = wanted < 1 ? rest + Math.log(wanted) - Math.log1p(-wanted) : Infinity;
      out[token] = Math.fround(Math.min(lowest, FLOAT32_MAX));
    }
    return out;
  }

  advance(token, prev, forced) {
    if (!forced && !this.queue.length) {
      for (const index of this.owed) {
        if (this.tokens[index][0] === token && !this.glues(index, prev)) {
          this.queue = this.tokens[index].slice(1);
          this.writing = index;
          break;
        }
      }
    }
    const piece = this.piece(prev, token);
    this.completion += piece;
    this.last = lastChar(this.last + piece);
    this.remaining -= 1;
    this.owed = this.owed.filter((i) => !this.completion.includes(this.texts[i]));
    if (!this.owed.length) this.queue = [];
  }
}
