"""Factory module the good specs name (validation only checks that it exists)."""


def build() -> None:
    """Never called: these specs are only validated."""
