"""What a run talks to: ModelClient (every model call: retries, budget, records) and the story store
(SQLite)."""
