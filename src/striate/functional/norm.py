"""norm ops."""

__all__: list[str] = []
