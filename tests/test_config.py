import pytest

from textgen.core.config import (
    DataConfig,
    ModelConfig,
    RunConfig,
    SampleConfig,
    TrainConfig,
)
from textgen.core.errors import ConfigError
from textgen.core.presets import PRESETS
from textgen.core.settings import settings_by_section


def test_run_config_round_trips_through_json_dict():
    config = RunConfig.from_preset("quick").with_overrides(
        data={"sources": ["a.txt", "b/"], "level": "word"}, sample={"stop": ["\n\n"]}
    )
    again = RunConfig.from_dict(config.to_dict())
    assert again == config
    assert again.data.level == "word" and again.sample.stop == ["\n\n"]


def test_run_folders_from_before_skip_connections_load_without_them():
    written_before = RunConfig().to_dict()
    del written_before["model"]["skip_connections"]
    assert RunConfig.from_dict(written_before).model.skip_connections is False
    assert RunConfig.from_dict(RunConfig().to_dict()).model.skip_connections is True


def test_presets_set_their_values_and_overrides_win():
    preset = PRESETS["shakespeare"]
    assert preset["model"]["units"] != 64 and preset["model"]["layers"] != ModelConfig().layers + 1
    config = RunConfig.from_preset("shakespeare").with_overrides(
        model={"units": 64, "layers": ModelConfig().layers + 1}
    )
    assert config.model.units == 64 and config.model.layers == ModelConfig().layers + 1
    assert config.model.cell == preset["model"]["cell"]
    assert config.train.learning_rate == preset["train"]["learning_rate"]
    assert config.train.learning_rate != TrainConfig().learning_rate  # the preset's, not default
    assert config.preset == "shakespeare"


def test_none_overrides_keep_preset_values():
    config = RunConfig.from_preset("quick").with_overrides(model={"units": None})
    assert config.model.units == RunConfig.from_preset("quick").model.units


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: DataConfig(level="byte"), "level must be one of char, word"),
        (lambda: DataConfig(seq_len=0), "seq_len must be a positive"),
        (lambda: DataConfig(val_fraction=1.0), "val_fraction"),
        (lambda: ModelConfig(cell="transformer"), "cell must be one of lstm, gru, rnn"),
        (lambda: ModelConfig(units=-3), "units must be a positive"),
        (lambda: ModelConfig(dropout=1.0), "dropout must be in [0, 1)"),
        (lambda: ModelConfig(dropout=-0.1), "dropout must be in [0, 1)"),
        (lambda: TrainConfig(batch_size=0), "batch_size must be a positive"),
        (lambda: TrainConfig(patience=-1), "patience"),
        (lambda: SampleConfig(temperature=-0.5), "temperature must be >= 0"),
        (lambda: SampleConfig(top_p=0.0), "top_p must be in (0, 1]"),
        (lambda: SampleConfig(top_p=1.5), "top_p must be in (0, 1]"),
        (lambda: RunConfig.from_preset("huge"), "preset must be one of quick, words, shakespeare"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_setting(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value)


def test_each_level_has_its_default_vocabulary_size():
    from textgen.data.levels import level_class

    assert level_class(DataConfig(level="word").level).default_size == 10000
    assert level_class(DataConfig(level="subword").level).default_size == 2000
    assert level_class(DataConfig(level="char").level).default_size is None


def test_flat_settings_are_sorted_into_sections_over_a_presets_own():
    given = {"units": 64, "sources": ("a.txt",), "temperature": 0.5, "level": None, "quiet": True}
    sections = settings_by_section(given, preset="quick")
    assert sections["model"] == {**PRESETS["quick"]["model"], "units": 64}
    assert sections["data"] == {**PRESETS["quick"]["data"], "sources": ["a.txt"]}
    assert sections["train"] == PRESETS["quick"]["train"]
    assert sections["sample"] == {"temperature": 0.5}
    assert settings_by_section({"units": 64})["model"] == {"units": 64}  # no preset
    with pytest.raises(ConfigError, match="preset must be one of"):
        settings_by_section({}, preset="nope")
