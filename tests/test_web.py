"""The web export in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium) runs the page against a loopback server."""

import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

import textgen
from tests.conftest import run_cli

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
    pytest.mark.slow,
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--window-size=900,700",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def pages(trained_runs, tmp_path_factory):
    """Web exports of a char, a word and a subword run, served on loopback: (base URL,
    run dir)."""
    from textgen.export.web import find_runtime, web_server

    try:
        find_runtime()
    except textgen.TextgenError as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("web")
    for level in ("char", "word", "subword"):
        run_cli(
            "export", "--run-dir", trained_runs(level, "gru"), "--format", "web",
            "--export-dir", root / level,
        )  # fmt: skip
    server = web_server(root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", root
    server.shutdown()


def _generate(browser, url: str, **params) -> str:
    """Open the page with `params` in its URL (autorun) and return #output's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    query = urllib.parse.urlencode({**params, "autorun": 1}, doseq=True)  # lists: repeated
    browser.get(f"{url}/index.html?{query}")
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 120).until(
        lambda _: output.get_attribute("data-done") == "1" or output.get_attribute("data-error")
    )
    assert not output.get_attribute("data-error"), browser.find_element(By.ID, "status").text
    return browser.execute_script("return document.getElementById('output').textContent")


@pytest.mark.parametrize(
    "level, prompt",
    [("char", "ROMEO:"), ("word", "Love the"), ("subword", "ROMEO:\nMy hea"), ("subword", "déjà")],
)
def test_the_page_writes_textgens_greedy_text(browser, pages, trained_runs, level, prompt):
    base, _ = pages
    page = _generate(browser, f"{base}/{level}", prompt=prompt, temperature=0, length=60)
    run = trained_runs.loaded(level, "gru")
    expected = run.generate([prompt], max_new_tokens=60, temperature=0)[0]
    assert page == prompt + expected


def test_a_prompt_typed_into_the_page(browser, pages, trained_runs):
    """As a user does it: type the prompt and settings, press Generate, read the text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = pages
    browser.get(f"{base}/char/index.html")
    button = browser.find_element(By.ID, "generate")
    WebDriverWait(browser, 60).until(lambda _: button.is_enabled())
    for field, value in (("prompt", "JULIET:"), ("temperature", "0"), ("length", "50")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    button.click()
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 60).until(lambda _: output.get_attribute("data-done") == "1")
    run = trained_runs.loaded("char", "gru")
    expected = run.generate(["JULIET:"], max_new_tokens=50, temperature=0)[0]
    assert output.get_attribute("textContent") == "JULIET:" + expected


def test_seeded_sampling_gives_the_same_text_twice(browser, pages, trained_runs):
    from selenium.webdriver.common.by import By

    base, root = pages
    settings = {"prompt": "JULIET:", "temperature": 0.9, "top_k": 20, "length": 80, "seed": 3}
    first = _generate(browser, f"{base}/char", **settings)
    assert first == _generate(browser, f"{base}/char", **settings)
    assert first != _generate(browser, f"{base}/char", **{**settings, "seed": 4})
    run = trained_runs.loaded("char", "gru")  # textgen's own draw
    expected = run.generate(["JULIET:"], max_new_tokens=80, temperature=0.9, top_k=20, seed=3)
    assert first == "JULIET:" + expected[0]
    status = browser.find_element(By.ID, "status").text
    assert "tokens/s" in status
    browser.save_screenshot(str(root / "page.png"))
    assert Path(root / "page.png").stat().st_size > 1000


def test_label_guidance_in_the_page_writes_textgens_text(browser, tmp_path):
    from test_items import _kinds_corpus

    from textgen.export.web import find_runtime, web_server

    from conftest import tiny_config

    try:
        find_runtime()
    except textgen.TextgenError as err:
        pytest.skip(str(err))
    config = tiny_config(_kinds_corpus(tmp_path / "kinds.jsonl"), epochs=2, steps_per_epoch=30)
    run_dir = textgen.train(
        config.with_overrides(data={"label_field": "kind"}), run_dir=tmp_path / "run",
        log=lambda _: None, verbose=0,
    )  # fmt: skip
    run_cli("export", "--run-dir", run_dir, "--format", "web", "--export-dir", tmp_path / "web")
    server = web_server(tmp_path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = {"label": "soft", "temperature": 0.9, "length": 40, "seed": 2}
        page = _generate(browser, f"http://127.0.0.1:{server.server_port}/web", label_strength=3,
                         **settings)  # fmt: skip
    finally:
        server.shutdown()
    run = textgen.load_run(run_dir, xla=False)
    expected = run.generate([""], max_new_tokens=40, temperature=0.9, seed=2, label="soft",
                            label_strength=3.0)  # fmt: skip
    assert page == expected[0]
    assert expected != run.generate([""], max_new_tokens=40, temperature=0.9, seed=2, label="soft",
                                    label_strength=1.0)  # fmt: skip


def test_a_subword_page_reads_and_heals_prompts_as_textgen_does(browser, pages, trained_runs):
    """Its prompts segmented by the page's SentencePiece reader, a prompt that ends inside
    a word healed, byte pieces never written: the NumPy sampler's text, seeded and guided
    by the same settings."""
    from textgen.runs.numpy_run import NumpyRun

    base, _ = pages
    from textgen.runs.folder import RunFolder

    run = NumpyRun(RunFolder(trained_runs("subword", "gru")))
    for prompt in ("JULIET:\nThe moo", "NURSE:\nSwe", "ROMEO: café 😀 sw"):
        place = run.loop.read_prompt(run.loop.start(), prompt)
        assert place.healed  # (each ends inside a word)
        for settings in ({"temperature": 0.9, "seed": 5}, {"temperature": 0.8, "seed": 2,
                                                           "repetition_penalty": 1.3}):  # fmt: skip
            page = _generate(browser, f"{base}/subword", prompt=prompt, length=30, **settings)
            expected = run.generate([prompt], max_new_tokens=30, **settings)[0]
            assert page == prompt + expected


def test_the_repetition_controls_in_the_page_write_textgens_text(browser, pages, trained_runs):
    base, _ = pages
    run = trained_runs.loaded("word", "gru")
    for controls in (
        {"repetition_penalty": 1.6, "no_repeat_ngram": 2, "temperature": 0},
        {"repetition_penalty": 1.3, "repetition_window": 8, "temperature": 0.9, "seed": 4},
        {"no_repeat_ngram": 1, "temperature": 0.8, "top_p": 1e-40, "seed": 1},
    ):
        page = _generate(browser, f"{base}/word", prompt="ROMEO:", length=40, **controls)
        expected = run.generate(["ROMEO:"], max_new_tokens=40, **controls)[0]
        assert page == "ROMEO:" + expected
    plain = run.generate(["ROMEO:"], max_new_tokens=40, temperature=0)[0]
    assert plain != run.generate(["ROMEO:"], max_new_tokens=40, temperature=0, no_repeat_ngram=2)[0]


def test_excluded_strings_in_the_page_write_textgens_text(browser, pages, trained_runs):
    base, _ = pages
    for level, exclude in (("word", ["the", "love"]), ("char", ["e", "O"])):
        run = trained_runs.loaded(level, "gru")
        settings = {"temperature": 0.9, "seed": 3}
        page = _generate(browser, f"{base}/{level}", prompt="ROMEO:", length=40,
                         exclude=exclude, **settings)  # fmt: skip
        expected = run.generate(["ROMEO:"], max_new_tokens=40, exclude=exclude, **settings)[0]
        assert page == "ROMEO:" + expected and not any(s in expected for s in exclude)


def test_included_texts_in_the_page_write_textgens_text(browser, pages, trained_runs):
    """The page's port of the inclusion rule (`inclusion.js`): the NumPy sampler's text,
    every text held; a request the length cannot hold is one line in the status."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from textgen.runs.folder import RunFolder
    from textgen.runs.numpy_run import NumpyRun

    base, _ = pages
    for level, include in (("char", ["sword", "moon"]), ("word", ["sword", "moon"]),
                           ("subword", ["moon", "sweet"])):  # fmt: skip
        run = NumpyRun(RunFolder(trained_runs(level, "gru")))
        for settings in ({"temperature": 0.9, "seed": 3}, {"temperature": 0.0}):
            page = _generate(browser, f"{base}/{level}", prompt="ROMEO:", length=40,
                             include=include, **settings)  # fmt: skip
            expected = run.generate(["ROMEO:"], max_new_tokens=40, include=include, **settings)[0]
            assert page == "ROMEO:" + expected and all(t in expected for t in include)
    query = urllib.parse.urlencode({"prompt": "ROMEO:", "length": 3, "include": "sword",
                                    "autorun": 1})  # fmt: skip
    browser.get(f"{base}/char/index.html?{query}")
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 60).until(lambda _: output.get_attribute("data-error"))
    status = browser.find_element(By.ID, "status").text
    assert status.startswith("error: include needs 6 tokens") and "\n" not in status
