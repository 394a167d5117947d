"""The research stack: algorithms, buffers, evaluation, logging and the CLI."""
