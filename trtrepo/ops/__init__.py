"""Custom extension ops: op descriptions (``description``), builds (``build``) and loading into torch (``library``).

Nothing here imports torch at import time.
"""
