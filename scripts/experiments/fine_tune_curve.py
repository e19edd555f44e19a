"""Fine-tuning against training from scratch on a small corpus the base run never saw.

    python scripts/experiments/fine_tune_curve.py --small "/usr/share/vim/vim90/doc/usr_0*.txt" \
        [--base-corpus ../shared/data/tinyshakespeare.txt] [--base-steps 2000] \
        [--steps 2400] [--eval-steps 40] [--learning-rates 1e-2,3e-3,1e-3]

1. A base run: textgen's default model (2 x GRU(256)) on the base corpus.
2. On the small corpus (its last 10% held out): the same model from scratch (textgen's
   defaults), and fine-tunes of the base (`train --init-from`) at each learning rate.
   Every arm trains the same number of steps of the same model, so the same steps take
   the same time; each validates every `--eval-steps` steps.
3. Prints the best validation loss so far at a few step counts for every arm, the
   steps/s measured, the final `textgen evaluate` figures and a sample of each.

Everything goes to a scratch folder (printed), removed unless --keep.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import tempfile
import time
from pathlib import Path

import textgen
from textgen.evaluate.evaluation import evaluate_run
from textgen.runs.folder import RunFolder

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def train_arm(name, work, small_sources, steps, eval_steps, init_from=None, lr=None):
    settings = {
        "data": {"sources": small_sources, "val_fraction": 0.1, "data_dir": str(work / "data")},
        "train": {
            "epochs": steps // eval_steps,
            "steps_per_epoch": eval_steps,
            "patience": 0,
            "sample_length": 0,
            **({"learning_rate": lr} if lr else {}),
        },
    }
    started = time.perf_counter()
    run_dir = textgen.train(
        None if init_from else textgen.RunConfig(),
        run_dir=work / name,
        settings=settings,
        init_from=init_from,
        log=lambda line: line.startswith("Fine-tuning") and print(" ", line),
        verbose=0,
    )
    seconds = time.perf_counter() - started
    log = RunFolder(run_dir).read_log()
    print(f"  {name}: {steps} steps in {seconds:.0f} s ({steps / seconds:.1f} steps/s)")
    return run_dir, log


def best_by_step(log, step):
    losses = [r["val_loss"] for r in log if r["step"] <= step and r["val_loss"] is not None]
    return min(losses) if losses else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", required=True, help="Glob of the small corpus' files.")
    parser.add_argument("--base-corpus", default=str(SHAKESPEARE))
    parser.add_argument("--base", help="An existing base run to use instead of training one.")
    parser.add_argument("--base-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=2400)
    parser.add_argument("--eval-steps", type=int, default=40)
    parser.add_argument("--learning-rates", default="1e-2,3e-3,1e-3")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch folder.")
    args = parser.parse_args()
    small = sorted(glob.glob(args.small))
    if not small:
        raise SystemExit(f"no files match {args.small}")
    size = sum(Path(p).stat().st_size for p in small)
    work = Path(tempfile.mkdtemp(prefix="textgen-fine-tune-"))
    print(f"scratch folder {work}; small corpus: {len(small)} files, {size / 1e3:.0f} KB")
    try:
        base = args.base
        if base is None:
            print(f"base run: default model, {args.base_steps} steps on {args.base_corpus}")
            base = textgen.train(
                textgen.RunConfig(),
                run_dir=work / "base",
                settings={
                    "data": {"sources": [args.base_corpus], "data_dir": str(work / "data")},
                    "train": {
                        "epochs": 4,
                        "steps_per_epoch": args.base_steps // 4,
                        "patience": 0,
                        "sample_length": 0,
                    },
                },
                log=lambda line: line.startswith("epoch") and print(" ", line),
                verbose=0,
            )
        arms = {"scratch (lr 1e-2)": train_arm("scratch", work, small, args.steps, args.eval_steps)}
        for lr in args.learning_rates.split(","):
            name = f"fine-tune lr {lr}"
            arms[name] = train_arm(
                f"ft-{lr}", work, small, args.steps, args.eval_steps, init_from=base, lr=float(lr)
            )
        checkpoints = sorted({args.eval_steps, 5 * args.eval_steps, args.steps // 4,
                              args.steps // 2, args.steps})  # fmt: skip
        print("\nbest validation loss (nats/char) by step:")
        print("  " + f"{'arm':22s}" + "".join(f"{s:>9d}" for s in checkpoints))
        for name, (_, log) in arms.items():
            row = "".join(f"{best_by_step(log, s):9.3f}" for s in checkpoints)
            print(f"  {name:22s}{row}")
        print("\ntextgen evaluate (best checkpoint) and a sample (temperature 0.7, seed 1):")
        for name, (run_dir, _) in arms.items():
            run = textgen.load_run(run_dir)
            figures = evaluate_run(run, samples=0).to_dict()
            sample = run.generate(["The "], max_new_tokens=240, temperature=0.7, seed=1)[0]
            print(f"\n  {name}: loss {figures['loss']:.4f} (bpc {figures['bpc']:.3f})")
            print("  The " + sample.replace("\n", "\n  "))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
