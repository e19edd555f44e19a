"""How each level reads text: one class per level (`char`, `word`, `subword`), each with
its NumPy form (no TensorFlow: the fast sampler) and its graph form (the training
pipeline, the generator, the export) side by side, held equal by tests.

Everything else asks the level of a vocabulary (`level_of(vocab)`), never its name.
"""

from __future__ import annotations

from textgen.data.levels.base import Level
from textgen.data.levels.char import CharLevel
from textgen.data.levels.subword import SubwordLevel
from textgen.data.levels.word import WordLevel

LEVEL_CLASSES: dict[str, type[Level]] = {
    cls.name: cls for cls in (CharLevel, WordLevel, SubwordLevel)
}


def level_class(name: str) -> type[Level]:
    """The class of the level called `name` (a config's `data.level`)."""
    return LEVEL_CLASSES[name]


def level_of(vocab) -> Level:
    """The level that reads text for `vocab` (a `Vocabulary`)."""
    return LEVEL_CLASSES[vocab.level](vocab)


__all__ = ["LEVEL_CLASSES", "Level", "level_class", "level_of"]
