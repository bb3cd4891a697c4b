"""The object store behind a repository URL: one interface (:class:`Store`: list, head, put, read in chunks, each
object's sha256 kept in its metadata) with three implementations, each client library imported only when its
store is opened: S3 and S3-compatible stores through boto3 (here), GCS through google-cloud-storage
(:mod:`trtrepo.remote.gcs`), Azure Blob through azure-storage-blob (:mod:`trtrepo.remote.azure`).

Credentials come only from the SDKs' standard chains (for S3: environment, shared config/credentials files,
container and instance roles); trtrepo never prints or writes them. Every call has connect/read timeouts and
bounded retries, so an unreachable store ends with an error naming the endpoint, never a hang.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trtrepo._hashing import CHUNK
from trtrepo.errors import MissingDependencyError, TrtrepoError
from trtrepo.remote.url import EXTRAS, RepositoryURL

LOGGER = logging.getLogger(__name__)

SHA256_METADATA = "sha256"  # x-amz-meta-sha256: the object's content hash, written by trtrepo publish
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 3


class RemoteError(TrtrepoError):
    """The object store refused or failed a request (names the URL or object key); exit 1."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as listed: its repository-relative path, size and the sha256 trtrepo stored in its metadata."""

    rel: str
    size: int
    sha256: str | None = None


class Store:
    """A repository prefix in one object store: what publish, verify and fetch need. Subclasses implement
    :meth:`put_file`, :meth:`head`, :meth:`list` and :meth:`chunks`; every error is a :class:`RemoteError` naming the
    object (or a :class:`~trtrepo.errors.MissingDependencyError` when the client library is missing)."""

    url: RepositoryURL

    def put_file(self, rel: str, path: Path, sha256: str) -> None:
        """Upload ``path`` as ``rel`` with its sha256 in the object's metadata."""
        raise NotImplementedError

    def head(self, rel: str) -> ObjectInfo | None:
        """Size and stored sha256 of ``rel``; None when there is no such object."""
        raise NotImplementedError

    def list(self) -> dict[str, ObjectInfo]:
        """Every object under the prefix, by repository-relative path (sha256 not included: one listing call)."""
        raise NotImplementedError

    def chunks(self, rel: str) -> Iterator[bytes]:
        """The bytes of ``rel`` in chunks; RemoteError when there is no such object."""
        raise NotImplementedError

    def read(self, rel: str) -> bytes:
        """The whole object ``rel`` (for small ones: the manifest, a config.pbtxt)."""
        return b"".join(self.chunks(rel))

    def sha256(self, rel: str, sink: Callable[[bytes], object] | None = None) -> str:
        """sha256 of the bytes of ``rel`` as stored, each chunk also passed to ``sink`` (a file being written)."""
        digest = hashlib.sha256()
        for block in self.chunks(rel):
            digest.update(block)
            if sink is not None:
                sink(block)
        return digest.hexdigest()

    def where(self, rel: str) -> str:
        """The object's URL, for messages."""
        return f"{self.url}/{rel}" if rel else str(self.url)


def missing_sdk(url: RepositoryURL, module: str) -> MissingDependencyError:
    """The exit-3 error for a store whose client library is not installed."""
    return MissingDependencyError(f"{url}: {url.scheme}:// repositories need {module}, which is not installed",
                                  hint=EXTRAS[url.scheme])


class S3Store(Store):
    """A repository prefix of one S3 bucket.

    Args:
        url: The repository URL (its endpoint, when set, is passed to boto3 as ``endpoint_url``).
    """

    def __init__(self, url: RepositoryURL) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise missing_sdk(url, "boto3") from None
        self.url = url
        config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})
        self._client: Any = boto3.session.Session().client("s3", endpoint_url=url.endpoint, config=config)

    # -- requests
    def put_file(self, rel: str, path: Path, sha256: str) -> None:
        """Upload ``path`` as ``rel`` with its sha256 in the object's metadata."""
        with self._errors(rel, "upload"), open(path, "rb") as body:
            self._client.put_object(Bucket=self.url.bucket, Key=self.url.key(rel), Body=body,
                                    Metadata={SHA256_METADATA: sha256})

    def head(self, rel: str) -> ObjectInfo | None:
        """Size and stored sha256 of ``rel``; None when there is no such object."""
        with self._errors(rel, "read"):
            try:
                reply = self._client.head_object(Bucket=self.url.bucket, Key=self.url.key(rel))
            except self._client.exceptions.ClientError as exc:
                if _code(exc) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return ObjectInfo(rel, int(reply.get("ContentLength", 0)), (reply.get("Metadata") or {}).get(SHA256_METADATA))

    def list(self) -> dict[str, ObjectInfo]:
        """Every object under the prefix, by repository-relative path (metadata not included: one listing call)."""
        base = f"{self.url.prefix}/" if self.url.prefix else ""
        found: dict[str, ObjectInfo] = {}
        with self._errors("", "list"):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.url.bucket, Prefix=base)
            for page in pages:
                for item in page.get("Contents", ()):
                    rel = str(item["Key"])[len(base):]
                    if rel:
                        found[rel] = ObjectInfo(rel, int(item.get("Size", 0)))
        return found

    def chunks(self, rel: str) -> Iterator[bytes]:
        """The bytes of ``rel`` in 1 MiB chunks.

        Raises:
            RemoteError: No such object, or the store failed (names the key).
        """
        with self._errors(rel, "read"):
            body = self._client.get_object(Bucket=self.url.bucket, Key=self.url.key(rel))["Body"]
            try:
                while block := body.read(CHUNK):
                    yield block
            finally:
                body.close()

    # -- errors
    def _errors(self, rel: str, what: str) -> Any:
        return _S3Errors(self, rel, what)


class StoreErrors:
    """A context manager turning a client library's errors into one-line RemoteErrors naming the object: each store's
    subclass implements :meth:`translate` (raise the RemoteError; return to let anything else through).

    trtrepo's own errors and a closing generator (GeneratorExit) pass through untranslated.
    """

    def __init__(self, store: Store, rel: str, what: str) -> None:
        self.store, self.rel, self.what = store, rel, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if exc is not None and not isinstance(exc, TrtrepoError | GeneratorExit):
            self.translate(exc)
        return False

    def translate(self, exc: BaseException) -> None:
        """Raise the RemoteError for ``exc`` (``raise ... from None``), or return to let it through."""
        raise NotImplementedError


class _S3Errors(StoreErrors):
    """botocore's errors."""

    def translate(self, exc: BaseException) -> None:
        from botocore import exceptions as bce

        url = self.store.url
        where = self.store.where(self.rel)
        endpoint = url.endpoint or "AWS S3"
        if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
            raise RemoteError(f"{where}: no S3 credentials found",
                              hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role "
                                   "(boto3's standard chain; trtrepo stores none)") from None
        if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ReadTimeoutError):
            raise RemoteError(f"{where}: cannot {self.what}: the store at {endpoint} does not answer ({exc})",
                              hint="check --endpoint-url / the URL and the network") from None
        if isinstance(exc, bce.ClientError):
            code = _code(exc)
            if code == "NoSuchKey":
                raise RemoteError(f"{where}: no such object") from None
            if code == "NoSuchBucket":
                raise RemoteError(f"{url}: bucket {url.bucket!r} does not exist at {endpoint}") from None
            raise RemoteError(f"{where}: cannot {self.what}: {code}: {exc}") from None
        if isinstance(exc, bce.BotoCoreError):
            raise RemoteError(f"{where}: cannot {self.what}: {exc}") from None


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def open_store(url: RepositoryURL) -> Store:
    """The store of ``url``, by scheme (the client library is imported here, exit 3 when it is missing)."""
    if url.scheme == "gs":
        from trtrepo.remote.gcs import GCSStore

        return GCSStore(url)
    if url.scheme == "as":
        from trtrepo.remote.azure import AzureStore

        return AzureStore(url)
    return S3Store(url)
