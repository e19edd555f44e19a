// Token healing (textgen.generate.rules.healing, its NumPy form ported): a subword prompt
// that ends inside a word goes on with the word. `tokens`: each id's text, [UNK] first.

const MAX_BACKOFF = 4;  // the pieces of a cut word backed off at most
const HEALS_AFTER = /[\p{L}\p{N}]$/u;  // a piece ending in a letter or digit
const ALNUM = /^[\p{L}\p{N}]+$/u;
const MARKER = /[\u{F0000}-\u{F10FF}]/u;  // item and label markers: never backed off

// The prompt's `ids` to read and those backed off: the most of the cut word's last pieces
// (each ending in a letter or digit, all but the first letters or digits alone) whose text
// some piece begins with.
export function healSplit(tokens, ids) {
  let best = 0;
  let text = '';
  for (let k = 1; k <= Math.min(MAX_BACKOFF, ids.length); k++) {
    const id = ids[ids.length - k];
    const piece = tokens[id];
    if (!id || !HEALS_AFTER.test(piece) || MARKER.test(piece)) break;
    text = piece + text;
    if (tokens.some((t, i) => i && t.startsWith(text))) best = k;
    if (!ALNUM.test(piece)) break;  // the word's first piece (" S" of " S" + "we")
  }
  return [ids.slice(0, ids.length - best), ids.slice(ids.length - best)];
}

// The first step's logits: -Infinity but on the ids whose text begins with `backedOff`.
export function healMask(tokens, logits, backedOff) {
  return logits.map((x, id) => (id && tokens[id].startsWith(backedOff) ? x : -Infinity));
}
