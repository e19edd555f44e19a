"""The installed package's smoke path, run outside the checkout by CI (scripts/test) with
the python of a fresh virtual environment that has textgen's wheel installed:

    VENV/bin/python scripts/wheel_smoke.py [--web]

Trains a tiny run, samples it through NumPy and TensorFlow (the same text), evaluates
it, exports a SavedModel and loads it with TensorFlow alone (a process that never
imports textgen), exports LiteRT and samples it, and with --web exports the page and
reads its text in headless Chromium. Exits non-zero at the first failure.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def textgen(*args) -> str:
    """Run the installed `textgen` console script; its stdout."""
    result = subprocess.run([str(BIN / "textgen"), *map(str, args)], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"textgen {' '.join(map(str, args))} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--web", action="store_true", help="also the web page in Chromium")
    web = parser.parse_args().web
    work = Path(tempfile.mkdtemp(prefix="textgen-smoke-"))
    os.chdir(work)  # nothing of a checkout in reach: the installed package only
    import textgen as installed

    assert "site-packages" in installed.__file__, installed.__file__
    rng = random.Random(0)
    words = "love night fair sweet death name rose moon heart sword thee my the and".split()
    lines = [f"ROMEO:\n{' '.join(rng.choices(words, k=8)).capitalize()}.\n" for _ in range(300)]
    (work / "play.txt").write_text("\n".join(lines), encoding="utf-8")
    run = work / "run"
    textgen("train", "--corpus", "play.txt", "--run-dir", run, "--units", 16, "--layers", 1,
            "--embedding-dim", 8, "--epochs", 1, "--steps-per-epoch", 20, "--batch-size", 8,
            "--seq-len", 24, "--no-xla", "--samples", 0)  # fmt: skip
    sample = ["sample", "--run-dir", run, "--prompt", "ROMEO:", "--length", 40, "--seed", 1]
    fast = textgen(*sample, "--backend", "numpy")
    assert fast == textgen(*sample, "--backend", "tensorflow", "--no-xla"), "numpy != tensorflow"
    assert "loss" in textgen("evaluate", "--run-dir", run, "--samples", 2)
    textgen("export", "--run-dir", run, "--export-dir", work / "serving")
    (version,) = (work / "serving" / "textgen").iterdir()
    load = (
        "import sys, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(version)!r})\n"
        "out = m.signatures['generate'](prompt=tf.constant(['ROMEO:']),"
        " max_new_tokens=tf.constant([40]), temperature=tf.constant([0.8]),"
        " top_k=tf.constant([0]), top_p=tf.constant([1.0]), seed=tf.constant([1], tf.int64))\n"
        "assert 'textgen' not in sys.modules\n"
        "print(out['text'].numpy()[0].decode())\n"
    )
    served = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True,
                            timeout=600, cwd=work)  # fmt: skip
    assert served.returncode == 0, served.stderr[-2000:]
    assert served.stdout.rstrip("\n") == fast.rstrip("\n"), (served.stdout, fast)
    textgen("export", "--run-dir", run, "--format", "litert", "--export-dir", work / "lite")
    assert textgen("sample", "--litert", work / "lite", *sample[3:]) == fast
    if web:
        _web(run, work, fast)
    print(f"wheel smoke path: all passed ({installed.__file__})")


def _web(run: Path, work: Path, expected: str) -> None:
    """The page, exported from the installed package, writes the same text in Chromium."""
    import threading

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from textgen.export.web import web_server

    textgen("export", "--run-dir", run, "--format", "web", "--export-dir", work / "web")
    server = web_server(work)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        url = f"http://127.0.0.1:{server.server_port}/web/index.html"
        driver.get(f"{url}?prompt=ROMEO:&length=40&seed=1&autorun=1")
        output = driver.find_element(By.ID, "output")
        WebDriverWait(driver, 120).until(
            lambda _: output.get_attribute("data-done") or output.get_attribute("data-error")
        )
        page = driver.execute_script("return document.getElementById('output').textContent")
    finally:
        driver.quit()
        server.shutdown()
    assert page == expected.rstrip("\n"), (page, expected)


if __name__ == "__main__":
    main()
