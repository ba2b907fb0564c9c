"""novelcraft engine: seed -> outline -> scenes -> manuscript."""
