"""The Azure Blob store (``as://account/container/prefix``, Triton's form) through azure-storage-blob, imported only
when one is opened.

Credentials, from the standard variables only (trtrepo stores none): ``AZURE_STORAGE_CONNECTION_STRING`` (the SDK's
and the az CLI's; its ``BlobEndpoint`` also names an emulator such as Azurite), else ``AZURE_STORAGE_KEY`` with the
account of the URL (the pair Triton reads: ``AZURE_STORAGE_ACCOUNT``/``AZURE_STORAGE_KEY``), else anonymous (public
containers). ``--endpoint-url http(s)://HOST:PORT`` reaches an emulator (account in the path, Azurite's form). The
account Triton would read must be the URL's: a different ``AZURE_STORAGE_ACCOUNT`` is refused (Triton prefers it to
the URL's). Each object's sha256 is blob metadata ``sha256``, as on S3.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trtrepo.errors import SpecError
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

CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
ACCOUNT_VARIABLE = "AZURE_STORAGE_ACCOUNT"
KEY_VARIABLE = "AZURE_STORAGE_KEY"
MAX_RETRIES = 3


class AzureStore(Store):
    """A repository prefix of one Azure Blob container."""

    def __init__(self, url: RepositoryURL) -> None:
        try:
            from azure.storage.blob import BlobServiceClient
        except ImportError:
            raise missing_sdk(url, "azure-storage-blob") from None
        self.url = url
        assert url.account is not None
        named = os.environ.get(ACCOUNT_VARIABLE)
        if named and named != url.account:
            raise SpecError(f"{url}: {ACCOUNT_VARIABLE}={named} names another storage account than the URL "
                            f"({url.account}); Triton would read {named}",
                            hint=f"unset {ACCOUNT_VARIABLE} or fix the URL")
        options: dict[str, Any] = {"connection_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                                   "retry_total": MAX_RETRIES}
        connection = os.environ.get(CONNECTION_STRING_VARIABLE)
        if connection and not url.endpoint:
            service = BlobServiceClient.from_connection_string(connection, **options)
            if service.account_name != url.account:
                raise SpecError(f"{url}: {CONNECTION_STRING_VARIABLE} is for storage account "
                                f"{service.account_name!r}, the URL names {url.account!r}")
        else:
            account_url = (f"{url.endpoint}/{url.account}" if url.endpoint
                           else f"https://{url.account}.blob.core.windows.net")
            key = os.environ.get(KEY_VARIABLE)
            credential = {"account_name": url.account, "account_key": key} if key else None
            service = BlobServiceClient(account_url, credential=credential, **options)
        self._service: Any = service
        self._container: Any = service.get_container_client(url.bucket)

    def put_file(self, rel: str, path: Path, sha256: str) -> None:
        """Upload ``path`` as ``rel`` with its sha256 in the blob's metadata."""
        with _AzureErrors(self, rel, "upload"), open(path, "rb") as body:
            self._container.upload_blob(self.url.key(rel), body, overwrite=True, metadata={SHA256_METADATA: sha256})

    def head(self, rel: str) -> ObjectInfo | None:
        """Size and stored sha256 of ``rel``; None when there is no such blob."""
        from azure.core.exceptions import ResourceNotFoundError

        with _AzureErrors(self, rel, "read"):
            try:
                props = self._container.get_blob_client(self.url.key(rel)).get_blob_properties()
            except ResourceNotFoundError as exc:
                if getattr(exc, "error_code", None) == "ContainerNotFound":
                    raise
                return None
        return ObjectInfo(rel, int(props.size or 0), (props.metadata or {}).get(SHA256_METADATA))

    def list(self) -> dict[str, ObjectInfo]:
        """Every blob under the prefix, by repository-relative path."""
        base = f"{self.url.prefix}/" if self.url.prefix else ""
        found: dict[str, ObjectInfo] = {}
        with _AzureErrors(self, "", "list"):
            for item in self._container.list_blobs(name_starts_with=base or None):
                rel = str(item.name)[len(base):]
                if rel:
                    found[rel] = ObjectInfo(rel, int(item.size or 0))
        return found

    def chunks(self, rel: str) -> Iterator[bytes]:
        """The bytes of ``rel`` in chunks (RemoteError naming it when there is none)."""
        with _AzureErrors(self, rel, "read"):
            yield from self._container.get_blob_client(self.url.key(rel)).download_blob().chunks()

    @property
    def endpoint(self) -> str:
        """The Blob service URL (for messages)."""
        return str(self._service.url).rstrip("/")


class _AzureErrors(StoreErrors):
    """Turns azure-core errors into one-line RemoteErrors naming the blob."""

    store: AzureStore

    def translate(self, exc: BaseException) -> None:
        from azure.core import exceptions as ace

        url, where = self.store.url, self.store.where(self.rel)
        if isinstance(exc, ace.ResourceNotFoundError):
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                raise RemoteError(f"{url}: container {url.bucket!r} does not exist at {self.store.endpoint}") from None
            raise RemoteError(f"{where}: no such object") from None
        if isinstance(exc, ace.ClientAuthenticationError):
            raise RemoteError(f"{where}: cannot {self.what}: access refused by {self.store.endpoint} "
                              f"({getattr(exc, 'error_code', None) or exc.reason})",
                              hint=f"set {KEY_VARIABLE} (with the URL's account) or {CONNECTION_STRING_VARIABLE} "
                                   "(trtrepo stores none)") from None
        if isinstance(exc, ace.ServiceRequestError | ace.ServiceResponseError):
            raise RemoteError(f"{where}: cannot {self.what}: the store at {self.store.endpoint} does not answer",
                              hint=f"check --endpoint-url / {CONNECTION_STRING_VARIABLE} and the network") from None
        if isinstance(exc, ace.AzureError):
            raise RemoteError(f"{where}: cannot {self.what}: {getattr(exc, 'error_code', None) or ''} "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
