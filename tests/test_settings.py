"""The one sampling-settings value and the one sampler interface: checks, defaults, what
a served request carries, batching and streams, the records written."""

import json

import pytest

from textgen.core.config import MAX_BATCH, SampleConfig
from textgen.core.errors import ConfigError
from textgen.data.items import ITEM_START
from textgen.generate.records import sample_lines
from textgen.generate.sampler import Sampler
from textgen.generate.settings import UNSET, SamplingSettings


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"top_k": -1}, "top_k must be >= 0"),
        ({"top_p": 0.0}, "top_p must be in"),
        ({"repetition_penalty": 0.0}, "repetition penalty must be > 0"),
        ({"repetition_window": 0}, "repetition window must be 1 to"),
        ({"no_repeat_ngram": 9}, "no-repeat n-gram size must be 1 to"),
        ({"max_copy": 1}, "max-copy must be 2 to"),
        ({"max_new_tokens": -1}, "length must be >= 0"),
        ({"stop": ["", "x"]}, "stop strings must not be empty"),
        ({"tempreature": 1.0}, "unknown sampling setting 'tempreature'"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(bad, message):
    with pytest.raises(ConfigError, match=message) as caught:
        SamplingSettings.of(**bad)
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_unset_settings_take_the_runs_defaults_and_given_ones_stay():
    run = SampleConfig(length=77, temperature=0.3, top_k=5, stop=["\n\n"], no_repeat_ngram=2)
    resolved = SamplingSettings.of(temperature=0.0, top_p=0.9, seed=4).with_defaults(run)
    assert (resolved.max_new_tokens, resolved.temperature, resolved.top_k) == (77, 0.0, 5)
    assert (resolved.top_p, resolved.seed, resolved.stop) == (0.9, 4, ("\n\n",))
    assert (resolved.no_repeat_ngram, resolved.repetition_penalty) == (2, 1.0)
    assert SamplingSettings.of(stop=["END"]).with_defaults(run).stop == ("END",)


def test_a_served_request_carries_unset_settings_as_unset():
    fields = SamplingSettings.of(temperature=0.5, no_repeat_ngram=3).request_fields()
    assert fields["temperature"] == 0.5 and fields["no_repeat_ngram"] == 3
    assert fields["max_new_tokens"] == fields["top_k"] == fields["repetition_window"] == UNSET


def test_prompts_start_an_item_of_the_label_on_item_runs_only():
    labelled = SamplingSettings.of(label="soft")
    read = labelled.prompts_to_read(["a", ""], items=True, labels=["hard", "soft"])
    assert all(p.startswith(ITEM_START) and len(p) > 1 for p in read) and read[0][-1] == "a"
    assert SamplingSettings().prompts_to_read(["a"], True, ["hard"]) == [ITEM_START + "a"]
    with pytest.raises(ConfigError, match="not trained on items"):
        labelled.prompts_to_read(["a"], items=False, labels=[])
    with pytest.raises(ConfigError, match="unknown label 'pink'"):
        SamplingSettings.of(label="pink").prompts_to_read(["a"], True, ["hard", "soft"])


class Recorder(Sampler):
    """A sampler that writes each row's prompt, seed and stream back."""

    unsupported = {"max_copy": "no copy guard here"}

    def __init__(self):
        self.batches = []

    def _draw(self, prompts, streams, settings):
        self.batches.append(len(prompts))
        return [f"{p}|{settings.seed}|{s}" for p, s in zip(prompts, streams)]


def test_the_sampler_draws_in_batches_and_numbers_each_rows_stream():
    sampler = Recorder()
    prompts = [f"p{i}" for i in range(MAX_BATCH * 2 + 3)]
    out = sampler.generate(prompts, SamplingSettings(seed=9))
    assert sampler.batches == [MAX_BATCH, MAX_BATCH, 3]
    assert out == [f"p{i}|9|{i}" for i in range(len(prompts))]
    assert sampler.generate("x", seed=2) == ["x|2|0"]  # keywords make the settings
    assert "".join(sampler.stream("y", seed=3)) == "y|3|0"
    with pytest.raises(ConfigError, match="no copy guard here"):
        sampler.generate(["x"], max_copy=8)


def test_records_say_how_each_sample_was_drawn():
    settings = SamplingSettings(seed=5, label="soft")
    lines = sample_lines(["a", "a"], ["1", "2"], settings, "jsonl")
    records = [json.loads(line) for line in lines]
    assert [(r["seed"], r["stream"], r["label"], r["completion"]) for r in records] == [
        (5, 0, "soft", "1"),
        (5, 1, "soft", "2"),
    ]
    assert sample_lines(["a", "b"], ["1", "2"], settings) == [
        "----- sample 1 -----", "a1", "----- sample 2 -----", "b2",
    ]  # fmt: skip
    assert sample_lines(["a", "b"], ["1", "2"], settings, items=True) == ["a1", "b2"]
