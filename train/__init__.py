"""train: LoRA / DoRA / QLoRA style adapters."""
