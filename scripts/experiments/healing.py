"""Token healing measured (issue #46): prompts cut inside a word, continued with and
without healing, against a char run of the same text:

    python scripts/experiments/healing.py CORPUS RUN [RUN ...] --prompts 300 \
        --out docs/data/healing.jsonl

CORPUS's last 10% (the runs' held-out text) gives the prompts: at random places, a word
of 4 letters or more cut after 1 to (its length - 1) letters, with the 300 characters
before it. Each run continues each prompt with the NumPy sampler (temperature 0.8 and
greedy, 12 tokens, seed 0, stream = the prompt's index), its prompt read healed (as
`textgen sample` reads it) and read whole (as before healing); the word the prompt cut
is completed by the completion's first letters. Reported per run and way: the share of
completed words that occur in the training text ("real"), the share that are the held-out
word itself ("exact"), and the share of completions that begin with a space or a sign
(the word left as the prompt cut it).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from textgen.generate.settings import SamplingSettings
from textgen.runs.folder import RunFolder
from textgen.runs.numpy_run import NumpyRun

WORD = re.compile(r"[A-Za-z]+")


def prompts_from(held_out: str, count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, the whole word it cuts) pairs, the prompt ending inside the word."""
    words = [m for m in WORD.finditer(held_out) if len(m.group()) >= 4 and m.start() >= 300]
    rng = random.Random(seed)
    chosen = rng.sample(words, count)
    pairs = []
    for match in chosen:
        cut = match.start() + rng.randint(1, len(match.group()) - 1)
        pairs.append((held_out[cut - 300 - (cut - match.start()) : cut], match.group()))
    return pairs


def completed_word(prompt: str, completion: str) -> str:
    """The prompt's last word with the letters the completion adds to it."""
    partial = WORD.search(prompt[::-1]).group()[::-1]
    added = re.match(r"[A-Za-z]*", completion).group()
    return partial + added


def measure(folder: Path, pairs, vocabulary: set[str], temperature: float) -> dict:
    run = NumpyRun(RunFolder(folder))
    loop = run.loop
    settings = SamplingSettings(max_new_tokens=12, temperature=temperature, seed=0)
    settings = settings.with_defaults(run.defaults)
    figures = {}
    for way, read in (("healed", loop.read_prompt), ("whole", loop.read)):
        real = exact = left = 0
        samples = []
        for index, (prompt, word) in enumerate(pairs):
            place = read(loop.start(), prompt)
            completion = "".join(loop.pieces(place, settings, index))
            done = completed_word(prompt, completion)
            real += done.lower() in vocabulary
            exact += done == word
            left += not completion[:1].isalpha()
            if len(samples) < 8:
                samples.append(f"{prompt[-30:]!r} + {completion!r} ({word})")
        n = len(pairs)
        figures[way] = {"real": real / n, "exact": exact / n, "left_as_cut": left / n,
                        "samples": samples}  # fmt: skip
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--prompts", type=int, default=300)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = args.corpus.read_text(encoding="utf-8")
    cut = int(len(text) * 0.9)
    vocabulary = {w.lower() for w in WORD.findall(text[:cut])}
    pairs = prompts_from(text[cut:], args.prompts)
    for folder in args.runs:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        level = config["data"]["level"]
        for temperature in (0.8, 0.0):
            figures = measure(folder, pairs, vocabulary, temperature)
            row = {"run": folder.name, "level": level, "temperature": temperature,
                   "prompts": len(pairs), **figures}  # fmt: skip
            for way in ("healed", "whole"):
                f = figures[way]
                print(f"{folder.name} T={temperature} {way}: real {f['real']:.1%}, exact "
                      f"{f['exact']:.1%}, left as cut {f['left_as_cut']:.1%}")  # fmt: skip
            if args.out:
                with open(args.out, "a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
