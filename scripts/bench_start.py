"""What a user waits for: whole commands from a cold process, against `import tensorflow`.

    python scripts/bench_start.py [--run-dir DIR] [--repeats 5] [--length 200]

Times, as new processes (medians of --repeats, interleaved so a slow spell hits all):

- baseline: `python -c "import tensorflow"`;
- `textgen sample --prompt ROMEO: --length 200` on the run (the newest under
  checkpoints/ by default; train one with `textgen train --preset quick`): the NumPy
  path, what `textgen sample` picks when it can;
- the same with `--backend tensorflow` (the TensorFlow generator, XLA);
- `textgen info`;
- the time to the first streamed character of `textgen sample`, NumPy and TensorFlow.

Prints seconds and ratios to the baseline (targets: sample <= 0.25x, info <= 0.1x).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def first_character(command: list[str], prompt: str) -> float:
    """Seconds until the command has printed the prompt and one character more."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    read = b""
    while len(read) <= len(prompt.encode()):
        chunk = process.stdout.read(1)
        if not chunk:
            break
        read += chunk
    seconds = time.perf_counter() - started
    process.kill()
    process.wait()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--length", type=int, default=200)
    args = parser.parse_args()
    textgen = [sys.executable, "-m", "textgen.cli"]
    run = ["--run-dir", args.run_dir] if args.run_dir else []
    prompt = "ROMEO:"
    sample = [*textgen, "sample", *run, "--prompt", prompt, "--length", str(args.length)]
    timed = {
        "python -c 'import tensorflow'": lambda: wall([sys.executable, "-c", "import tensorflow"]),
        "textgen sample (numpy)": lambda: wall([*sample, "--backend", "numpy"]),
        "textgen sample (auto)": lambda: wall(sample),
        "textgen sample --backend tensorflow": lambda: wall([*sample, "--backend", "tensorflow"]),
        "textgen info": lambda: wall([*textgen, "info", *run]),
        "first character (numpy)": lambda: first_character([*sample, "--backend", "numpy"], prompt),
        "first character (tensorflow)": lambda: first_character(
            [*sample, "--backend", "tensorflow"], prompt
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in timed}
    for measure in timed.values():  # a first round unmeasured: the disk cache warm
        measure()
    for _ in range(args.repeats):
        for name, measure in timed.items():
            times[name].append(measure())
    baseline = statistics.median(times["python -c 'import tensorflow'"])
    print(f"machine: {sys.platform}, medians of {args.repeats} cold processes each")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"  {name:38s} {seconds:6.2f} s   {seconds / baseline:5.2f}x import tensorflow")


if __name__ == "__main__":
    main()
