"""Evaluation of stories and books: the metrics of a drafted story or a text file, side by side with
the human range, and judges run over a story's scenes."""
