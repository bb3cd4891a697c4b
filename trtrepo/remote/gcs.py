"""The GCS store (``gs://bucket/prefix``) through google-cloud-storage, imported only when one is opened.

Credentials: google-auth's standard chain (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application-default
credentials, the metadata server); trtrepo stores none. An emulator is reached the SDK's way: ``STORAGE_EMULATOR_HOST``
(anonymous), or ``--endpoint-url`` (also anonymous: an emulator, not Google). Each object's sha256 is custom metadata
``sha256``, as on S3.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trtrepo._hashing import CHUNK
from trtrepo.remote.store import (
    CONNECT_TIMEOUT_S,
    READ_TIMEOUT_S,
    SHA256_METADATA,
    ObjectInfo,
    RemoteError,
    Store,
    StoreErrors,
    missing_sdk,
)
from trtrepo.remote.url import RepositoryURL

LOGGER = logging.getLogger(__name__)

EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"  # the Python SDK's
TRITON_EMULATOR_VARIABLE = "CLOUD_STORAGE_EMULATOR_ENDPOINT"  # google-cloud-cpp's (Triton's GCS client)
TIMEOUT = (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)


class GCSStore(Store):
    """A repository prefix of one GCS bucket."""

    def __init__(self, url: RepositoryURL) -> None:
        try:
            from google.cloud import storage
        except ImportError:
            raise missing_sdk(url, "google-cloud-storage") from None
        self.url = url
        with _GCSErrors(self, "", "connect"):
            if url.endpoint:
                from google.auth.credentials import AnonymousCredentials

                client = storage.Client(project="trtrepo", credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                                        client_options={"api_endpoint": url.endpoint})
            else:
                client = storage.Client()
        self._bucket: Any = client.bucket(url.bucket)

    def put_file(self, rel: str, path: Path, sha256: str) -> None:
        """Upload ``path`` as ``rel`` with its sha256 in the object's metadata."""
        with _GCSErrors(self, rel, "upload"):
            blob = self._bucket.blob(self.url.key(rel))
            blob.metadata = {SHA256_METADATA: sha256}
            blob.upload_from_filename(str(path), timeout=TIMEOUT)

    def head(self, rel: str) -> ObjectInfo | None:
        """Size and stored sha256 of ``rel``; None when there is no such object."""
        with _GCSErrors(self, rel, "read"):
            blob = self._bucket.get_blob(self.url.key(rel), timeout=TIMEOUT)
        if blob is None:
            return None
        return ObjectInfo(rel, int(blob.size or 0), (blob.metadata or {}).get(SHA256_METADATA))

    def list(self) -> dict[str, ObjectInfo]:
        """Every object under the prefix, by repository-relative path."""
        base = f"{self.url.prefix}/" if self.url.prefix else ""
        found: dict[str, ObjectInfo] = {}
        with _GCSErrors(self, "", "list"):
            for blob in self._bucket.client.list_blobs(self._bucket, prefix=base, timeout=TIMEOUT):
                rel = str(blob.name)[len(base):]
                if rel:
                    found[rel] = ObjectInfo(rel, int(blob.size or 0))
        return found

    def chunks(self, rel: str) -> Iterator[bytes]:
        """The bytes of ``rel`` in 1 MiB chunks (RemoteError naming it when there is none)."""
        blob = self._bucket.blob(self.url.key(rel))
        with _GCSErrors(self, rel, "read"), blob.open("rb", chunk_size=CHUNK, timeout=TIMEOUT) as body:
            while block := body.read(CHUNK):
                yield block


class _GCSErrors(StoreErrors):
    """Turns google-api-core / google-auth errors into one-line RemoteErrors naming the object."""

    store: GCSStore

    def translate(self, exc: BaseException) -> None:
        import google.auth.exceptions as gae
        from google.api_core import exceptions as gce

        url = self.store.url
        where = self.store.where(self.rel)
        endpoint = url.endpoint or _emulator() or "Google Cloud Storage"
        if isinstance(exc, gae.DefaultCredentialsError):
            raise RemoteError(f"{where}: no GCS credentials found",
                              hint="set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or run "
                                   "'gcloud auth application-default login' (google-auth's chain; trtrepo stores "
                                   "none)") from None
        if isinstance(exc, gce.NotFound):
            if self.rel:
                raise RemoteError(f"{where}: no such object (or bucket {url.bucket!r} does not exist at "
                                  f"{endpoint})") from None
            raise RemoteError(f"{url}: bucket {url.bucket!r} does not exist at {endpoint}") from None
        if isinstance(exc, gce.GoogleAPICallError):
            raise RemoteError(f"{where}: cannot {self.what}: {exc.code}: {getattr(exc, 'message', exc)}") from None
        if isinstance(exc, OSError | gae.TransportError | gce.RetryError):
            raise RemoteError(f"{where}: cannot {self.what}: the store at {endpoint} does not answer ({exc})",
                              hint=f"check --endpoint-url / {EMULATOR_VARIABLE} and the network") from None


def _emulator() -> str | None:
    import os

    return os.environ.get(EMULATOR_VARIABLE) or None
