"""`novelcraft train arena`: the base and every adapter of a run or sweep answer the same held-out prompts
with the same seeds; each answer is judged (rubric 0-5), checked for format and measured for repetition,
so an adapter that loops is caught even when its eval loss is the lowest. See arena.run for the wiring.
"""
