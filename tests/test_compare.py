"""`textgen compare` end to end on a tiny budget."""

import csv
import math

import pytest

from conftest import run_cli


@pytest.mark.slow
def test_compare_trains_each_cell_and_writes_the_report(tmp_path, corpus_file):
    report = tmp_path / "report"
    result = run_cli(
        "compare", "--cells", "rnn,gru", "--corpus", corpus_file, "--report", report,
        "--budget-minutes", 0.05, "--eval-steps", 5, "--probe-steps", 10,
        "--probe-distances", "15,40", "--seq-len", 24, "--layers", 1, "--units", 16,
        "--embedding-dim", 8, "--batch-size", 8, "--quiet", "--no-xla",
    )  # fmt: skip
    rows = list(csv.DictReader(open(report / "compare.csv", encoding="utf-8")))
    assert [r["cell"] for r in rows] == ["rnn", "gru"]
    for row in rows:
        assert int(row["parameters"]) > 0 and float(row["train_tokens_per_sec"]) > 0
        assert float(row["best_val_loss"]) > 0 and float(row["generate_tokens_per_sec"]) > 0
        assert 0 <= float(row["probe_accuracy_d15"]) <= 1
        assert 0 <= float(row["probe_accuracy_d40"]) <= 1
    assert int(rows[0]["parameters"]) < int(rows[1]["parameters"])  # a GRU has 3x the weights
    curves = list(csv.DictReader(open(report / "curves.csv", encoding="utf-8")))
    assert {c["cell"] for c in curves} == {"rnn", "gru"}
    png = (report / "compare.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    markdown = (report / "compare.md").read_text(encoding="utf-8")
    assert "| SimpleRNN |" in markdown and "| GRU |" in markdown and "D=40" in markdown
    assert "lowest validation loss:" in markdown and "compare.png" in result.output
    assert (report / "runs" / "gru" / "config.json").is_file()
    again = run_cli("compare", "--cells", "gru", "--corpus", corpus_file, "--report", report,
                    expect=2)  # fmt: skip
    assert "already holds a comparison" in again.stderr


@pytest.mark.slow
def test_compare_takes_levels_as_it_takes_cells_and_ranks_them_by_bits_per_character(
    tmp_path, corpus_file
):  # fmt: skip
    report = tmp_path / "report"
    result = run_cli(
        "compare", "--cells", "gru", "--levels", "char,subword", "--corpus", corpus_file,
        "--report", report, "--budget-minutes", 0.05, "--eval-steps", 5, "--probe-steps", 5,
        "--probe-distances", "15", "--seq-len", 24, "--layers", 1, "--units", 16,
        "--embedding-dim", 8, "--batch-size", 8, "--quiet", "--no-xla",
    )  # fmt: skip
    rows = list(csv.DictReader(open(report / "compare.csv", encoding="utf-8")))
    assert [(r["cell"], r["level"]) for r in rows] == [("gru", "char"), ("gru", "subword")]
    char, subword = rows
    for row in rows:  # bits per character: the loss over the characters the tokens spell
        per_token = float(row["generate_chars_per_sec"]) / float(row["generate_tokens_per_sec"])
        bits = float(row["best_val_loss"]) / math.log(2) / per_token
        assert float(row["best_val_bpc"]) == pytest.approx(bits, rel=0.02)
    assert float(char["generate_chars_per_sec"]) == pytest.approx(
        float(char["generate_tokens_per_sec"]), rel=0.01
    )  # a character a token
    assert float(subword["generate_chars_per_sec"]) > float(subword["generate_tokens_per_sec"])
    assert char["probe_accuracy_d15"] == subword["probe_accuracy_d15"]  # one probe per cell
    assert (report / "runs" / "gru-char" / "config.json").is_file()
    assert (report / "runs" / "gru-subword" / "tokenizer.model").is_file()
    markdown = (report / "compare.md").read_text(encoding="utf-8")
    assert "| GRU, char |" in markdown and "| GRU, subword |" in markdown
    best = min(rows, key=lambda r: float(r["best_val_bpc"]))
    assert f"lowest validation loss: GRU, {best['level']} (" in markdown
    assert "bits per character" in markdown and "characters/s" in markdown
    assert markdown.count("| GRU | ") == 1  # the probe's row, once
    assert "Report:" in result.output


def test_compare_refuses_unknown_cells(tmp_path, corpus_file):
    result = run_cli("compare", "--cells", "lstm,transformer", "--report", tmp_path, expect=2)
    assert "transformer" in result.stderr and "rnn, lstm, gru" in result.stderr
    result = run_cli("compare", "--levels", "char,bytes", "--report", tmp_path, expect=2)
    assert "bytes" in result.stderr and "char, word, subword" in result.stderr


def test_verdicts_name_no_memory_winner_near_chance():
    from textgen.evaluate.compare import CellResult, verdicts

    def result(cell, probe):
        return CellResult(cell, 1000, 1e4, 1.5, 10.0, 100, 1e4, curve=[], probe=probe)

    near_chance = [result("rnn", {25: 0.10, 50: 0.10}), result("lstm", {25: 0.07, 50: 0.07})]
    assert "long-range memory: no cell above chance (8%): SimpleRNN 10%, LSTM 7%" in verdicts(
        near_chance
    )
    learned = near_chance + [result("gru", {25: 1.0, 50: 0.9})]
    assert "long-range memory: GRU (mean probe accuracy 95%; SimpleRNN 10%, LSTM 7%)" in (
        verdicts(learned)
    )
