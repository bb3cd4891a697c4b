"""Repositories in object storage: URLs (:mod:`~trtrepo.remote.url`), the stores (:mod:`~trtrepo.remote.store`:
S3 through boto3; :mod:`~trtrepo.remote.gcs`, :mod:`~trtrepo.remote.azure`), and reading a published repository
back, verified, with the local mirror a server needs
(:mod:`~trtrepo.remote.fetch`). ``import trtrepo.remote`` imports no client library.
"""

from __future__ import annotations

from trtrepo.remote.fetch import (
    BACKEND_CONFIG_FILE,
    RemoteRepository,
    describe,
    fetch_plugins,
    mirror_folder,
    open_remote,
    verify_objects,
    write_backend_config,
)
from trtrepo.remote.store import SHA256_METADATA, ObjectInfo, RemoteError, S3Store, Store, open_store
from trtrepo.remote.url import AZURE_EXTRA, GCS_EXTRA, S3_EXTRA, RepositoryURL, is_url, parse_url

__all__ = [
    "AZURE_EXTRA",
    "BACKEND_CONFIG_FILE",
    "GCS_EXTRA",
    "S3_EXTRA",
    "SHA256_METADATA",
    "ObjectInfo",
    "RemoteError",
    "RemoteRepository",
    "RepositoryURL",
    "S3Store",
    "Store",
    "describe",
    "fetch_plugins",
    "is_url",
    "mirror_folder",
    "open_remote",
    "open_store",
    "parse_url",
    "verify_objects",
    "write_backend_config",
]
