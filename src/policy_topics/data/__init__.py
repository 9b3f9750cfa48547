"""Dataset resolution, loading, cleaning and splitting."""
