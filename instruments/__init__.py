"""instruments package."""

__all__: list[str] = []
