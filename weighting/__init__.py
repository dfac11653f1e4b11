"""weighting package."""

__all__: list[str] = []
