"""sampling package."""

__all__: list[str] = []
