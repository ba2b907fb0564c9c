"""The Story API: what every front end (CLI, studio, study runner) calls to start, draft, resume,
redraft, edit and export a story."""
