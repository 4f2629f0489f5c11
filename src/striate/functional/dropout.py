"""dropout ops."""

__all__: list[str] = []
