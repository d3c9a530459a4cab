"""Price data: download/cache, cleaning and validation, windowed datasets."""
