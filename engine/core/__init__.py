"""Records and text at the bottom of every layer: the pydantic records (seed, outline, summary, call
records), errors, files, token counting, seeds, the scene floor and the pure text functions the guard
and the metrics share. Nothing here imports another novelcraft layer."""
