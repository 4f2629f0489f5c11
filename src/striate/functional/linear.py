"""linear ops."""

__all__: list[str] = []
