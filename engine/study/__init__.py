"""Studies: seeds x variants x repeats drafted (resumable), evaluated, and reported."""
