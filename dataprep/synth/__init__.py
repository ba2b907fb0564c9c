"""`novelcraft dataprep generate`: a teacher model writes instruction/response pairs from a spec.

prompts -> answers -> refine -> filter -> mix -> compile, each stage resumable (cache/ holds every model
result by content key) and every model call recorded in DIR/calls.db. See synth.run for the wiring.
"""
