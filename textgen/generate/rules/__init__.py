"""The token-choice rules: one file a rule, each holding its NumPy form (the readable
specification) beside its graph form, held equal by tests (tests/test_rules.py).

In the order they apply: `label_guidance`, `repetition` (`repetition_penalty`,
`ngram_ban`), `temperature`, `truncation` (top-k, top-p), `inclusion` (the texts a sample
must hold: NumPy only so far), `never_unk` with `seeded_draw`, and the choice among the
best that the `checks` allow: the `copy_guard` and `exclusion` (excluded strings).
`pipeline.TokenRules` composes the NumPy forms for one row (every NumPy sampler);
`token_choice.TokenChoice` the graph forms for a batch (the generator's loop, beams, the
export). Importing this package does not import
TensorFlow (`token_choice` does).
"""
