"""The LiteRT and web exports measured: file sizes, text equality, loss and speed.

    python scripts/litert_measure.py RUN_DIR [RUN_DIR ...] [--tokens 2000] [--score 20000]

For each run and each `--quantize` (none, dynamic, float16): the .tflite size; whether
the reference loop's greedy text (300 tokens, three prompts) equals `textgen sample
--temperature 0`; the loss (nats per token) of the first `--score` tokens of the run's
validation text through the file, beside textgen's own; tokens/s of the reference loop
at batch 1 against the in-process generator (XLA, as `textgen sample`), same run, median
of 3 rounds; and, when Chromium and the LiteRT.js runtime are installed, the web page's
tokens/s in headless Chromium and what the browser loads (runtime + model).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import textgen
from textgen.data.corpus import load_corpus
from textgen.export.litert import export_litert
from textgen.export.litert_sampler import LiteRTSampler
from textgen.export.web import export_web, web_server

PROMPTS = ["ROMEO:", "", "The king"]


def rate(generate, tokens: int, rounds: int = 3) -> float:
    generate(20)  # warm up (compile, allocate)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        generate(tokens)
        times.append(time.perf_counter() - started)
    return tokens / statistics.median(times)


def browser_rate(folder: Path, tokens: int) -> float | None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = web_server(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        rates = []
        for _ in range(3):
            driver.get(
                f"http://127.0.0.1:{server.server_port}/index.html"
                f"?temperature=0.8&seed=1&length={tokens}&autorun=1"
            )
            output = driver.find_element(By.ID, "output")
            WebDriverWait(driver, 600).until(
                lambda _, o=output: o.get_attribute("data-done") == "1"
            )
            rates.append(float(output.get_attribute("data-tokens-per-second")))
        return statistics.median(rates)
    finally:
        driver.quit()
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--score", type=int, default=20000)
    args = parser.parse_args()
    for run_dir in args.runs:
        run = textgen.load_run(run_dir)
        validation = load_corpus(run.config.data).validation
        scored_text = validation[: args.score * (1 if run.vocab.level == "char" else 6)]
        own_loss = run.score([scored_text])[0]
        in_process = rate(
            lambda n, r=run: r.generate([""], max_new_tokens=n, temperature=0.8, seed=1),
            args.tokens,
        )
        print(f"\n{run_dir}: {run.config.model.layers} x {run.config.model.cell.upper()}"
              f"({run.config.model.units}), {run.vocab.level} level")  # fmt: skip
        print(f"textgen: loss {own_loss[0]:.4f} over {own_loss[1]:,} tokens; "
              f"{in_process:,.0f} tokens/s in process (XLA)")  # fmt: skip
        print("| quantize | .tflite | greedy = textgen sample | loss | tokens/s (x in process) |")
        print("|---|---:|---|---:|---:|")
        with tempfile.TemporaryDirectory() as tmp:
            for quantize in ("none", "dynamic", "float16"):
                result = export_litert(run_dir, export_dir=f"{tmp}/{quantize}", quantize=quantize)
                size = (result.path / "model.tflite").stat().st_size
                sampler = LiteRTSampler(result.path)
                same = all(
                    sampler.generate(p, max_new_tokens=300, temperature=0)
                    == run.generate([p], max_new_tokens=300, temperature=0)[0]
                    for p in PROMPTS
                )
                loss, _ = sampler.score(scored_text)
                speed = rate(
                    lambda n, s=sampler: s.generate("", max_new_tokens=n, temperature=0.8, seed=1),
                    args.tokens,
                )
                print(f"| {quantize} | {size / 1e6:.2f} MB | {'yes' if same else 'no'} "
                      f"| {loss:.4f} | {speed:,.0f} ({speed / in_process:.2f}x) |")  # fmt: skip
            try:
                web = export_web(run_dir, export_dir=f"{tmp}/web")
            except textgen.TextgenError as err:
                print(f"web: not measured ({err})")
                continue
            loaded = sum(
                (web.path / f).stat().st_size
                for f in ("model.tflite", "litert/wasm/litert_wasm_internal.wasm",
                          "litert/wasm/litert_wasm_internal.js", "litert/core/index.js")
            )  # fmt: skip
            speed = browser_rate(web.path, args.tokens)
            shown = "not measured (no chromium)" if speed is None else f"{speed:,.0f} tokens/s"
            print(f"web: the page loads {loaded / 1e6:.1f} MB; headless Chromium: {shown} "
                  f"({(speed or 0) / in_process:.2f}x in process)")  # fmt: skip


if __name__ == "__main__":
    main()
