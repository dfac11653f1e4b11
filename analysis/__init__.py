"""analysis package."""

__all__: list[str] = []
