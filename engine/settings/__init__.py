"""Settings: one resolution path (defaults < config file < environment < flags), the expert registry
that settings name, and the backend a resolved configuration opens."""
