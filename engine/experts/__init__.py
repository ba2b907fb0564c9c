"""Style experts: LoRA adapters on one base model, chosen per scene by a router.

registry (the YAML/TOML file), router (forced > keywords > embeddings; pure), embedding (MiniLM vectors,
cached), setup (settings + seed + backend: directives and the checks before a story exists), scene (route
and draft one scene), records (who wrote which scene), voice (Delta against the authors), corpus (an
expert's training text), export and serving (registry entries and multi-expert servers), cli.
"""
