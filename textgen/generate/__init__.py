"""Text from a trained network: sampling settings, token choice and its rules, stop
strings, priming and scoring, the generation loop, streaming."""
