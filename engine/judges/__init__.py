"""Judges: model calls that score or compare prose (a rubric score, a pairwise verdict, an answer
check), over ModelClient, each answer validated against its schema."""
