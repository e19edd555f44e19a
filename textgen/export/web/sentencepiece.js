// A subword run's prompts read in the browser: SentencePiece's unigram segmentation (the
// `sentencepiece` package's, which textgen's NumPy path uses, and TF Text's in the graph),
// from the model's pieces, scores and types (textgen.json's `reader`). No normalisation
// but spaces written as "▁" (textgen learns its pieces with the identity rule and no dummy
// prefix); the best segmentation by summed float32 scores, a tie to the longer last piece;
// a character no piece holds is read as its UTF-8 bytes (byte fallback).

const NORMAL = 1;
const USER_DEFINED = 4;
const BYTE = 6;
const UNK_PENALTY = 10;

export class PieceReader {
  constructor({pieces, scores, types}) {
    this.root = new Map();
    this.bytes = new Map();
    let minScore = Infinity;
    let maxScore = -Infinity;
    pieces.forEach((piece, id) => {
      const type = types[id];
      if (type === BYTE) this.bytes.set(parseInt(piece.slice(3, 5), 16), id);
      if (type === NORMAL) {
        minScore = Math.min(minScore, scores[id]);
        maxScore = Math.max(maxScore, scores[id]);
      }
      if (type !== NORMAL && type !== USER_DEFINED) return;
      let node = this.root;
      for (const char of piece) {
        if (!node.has(char)) node.set(char, new Map());
        node = node.get(char);
      }
      node.id = id;
    });
    this.scores = scores.map((score, id) => (types[id] === USER_DEFINED ? null : Math.fround(score)));
    this.maxScore = maxScore;
    this.unkScore = Math.fround(minScore - UNK_PENALTY);
    this.unkId = types.indexOf(2);
  }

  // The ids of `text` (a string already read as textgen reads it: line ends as "\n").
  encode(text) {
    const chars = Array.from(text.replaceAll(' ', '\u2581'));
    const n = chars.length;
    const best = new Float64Array(n + 1);  // float32 values: the best path to each position
    const from = new Int32Array(n + 1).fill(-1);
    const ids = new Int32Array(n + 1);
    for (let start = 0; start < n; start++) {
      let node = this.root;
      let single = false;
      for (let end = start; end < n; end++) {
        node = node.get(chars[end]);
        if (!node) break;
        if (node.id === undefined) continue;
        const length = end + 1 - start;
        // a user-defined piece (a line end, a marker) always wins where it matches
        const score = this.scores[node.id] ?? length * this.maxScore + 1;
        this.offer(best, from, ids, start, end + 1, score, node.id);
        if (length === 1) single = true;
      }
      if (!single) this.offer(best, from, ids, start, start + 1, this.unkScore, this.unkId);
    }
    const path = [];
    for (let end = n; end > 0; end = from[end]) path.push([from[end], end, ids[end]]);
    const out = [];
    for (const [start, end, id] of path.reverse()) {
      if (id !== this.unkId) {
        out.push(id);
        continue;
      }
      const piece = chars.slice(start, end).join('').replaceAll('\u2581', ' ');
      for (const byte of new TextEncoder().encode(piece)) out.push(this.bytes.get(byte) ?? this.unkId);
    }
    return out;
  }

  offer(best, from, ids, start, end, score, id) {
    const candidate = Math.fround(score + best[start]);
    if (from[end] < 0 || candidate > best[end]) {
      best[end] = candidate;
      from[end] = start;
      ids[end] = id;
    }
  }
}
