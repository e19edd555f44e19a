"""Text in, token ids out: corpora, items, tokenizers, the id cache, training windows,
what a run trains on, and the copy guard's span index."""
