"""Do the defaults learn a long-range dependency? Trains each cell on the probe corpus.

    python scripts/experiments/probe_defaults.py                      # lstm and gru at the defaults
    python scripts/experiments/probe_defaults.py --cells rnn,lstm --set train.learning_rate=0.005

Prints the accuracy of the dependent word by distance (chance is 1/12 = 8%); the
defaults must reach >= 90% at distances 20-80 within 1500 steps (textgen.evaluate.probe).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from textgen.core.config import RunConfig
from textgen.evaluate.probe import chance_accuracy, train_probe


def parse_settings(pairs: list[str]) -> dict[str, dict]:
    sections: dict[str, dict] = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = json.loads(value)
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm,gru")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--distances", default="25,50,75")
    parser.add_argument("--set", action="append", default=[], help="section.name=JSON value")
    args = parser.parse_args()
    overrides = parse_settings(args.set)
    distances = [int(d) for d in args.distances.split(",")]
    print(f"chance {chance_accuracy():.0%}; overrides {overrides or 'none (the defaults)'}")
    for cell in args.cells.split(","):
        config = RunConfig().with_overrides(model={"cell": cell}).with_overrides(**overrides)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            accuracy = train_probe(
                config,
                folder,
                steps=args.steps,
                eval_distances=distances,
                verbose=0,
                log=lambda line: line.startswith("epoch") and print("  " + line, flush=True),
            )
        seconds = time.perf_counter() - started
        row = "  ".join(f"d={d}: {a:4.0%}" for d, a in accuracy.items())
        print(f"{cell:5s} {row}   ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
