"""MiniLM loaded from several threads at once, as a study's stories do: transformers' lazy imports are
not thread-safe, so the loads must take turns."""

from __future__ import annotations

import subprocess
import sys

import pytest

from novelcraft.experts.embedding import minilm_available

SCRIPT = """
import threading
from novelcraft.experts.embedding import MiniLMEmbedder, minilm_similarity
barrier = threading.Barrier(4)
out, errors = [], []
def load(own):
    try:
        barrier.wait()
        if own:
            out.append(MiniLMEmbedder().embed(["The lamp was lit at nine."])[0])
        else:
            out.append(minilm_similarity()(["The lamp was lit at nine."], ["a lamp", "a boat"])[0])
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not errors, errors
assert len(out) == 4 and minilm_similarity() is minilm_similarity()
print("ok")
"""


@pytest.mark.skipif(not minilm_available(), reason="MiniLM is not installed")
def test_minilm_loads_from_several_threads_at_once():
    # A fresh interpreter: the race is in the first import of transformers' names.
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
