"""dataprep: real books into scene-level training corpora."""
