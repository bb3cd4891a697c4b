"""Repository URLs in Triton's grammar: ``s3://bucket/prefix`` (and Triton's endpoint form
``s3://http://host:port/bucket/prefix``), ``gs://bucket/prefix`` and ``as://account/container/prefix``. Pure parsing:
no client library is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trtrepo.errors import SpecError

SCHEMES = ("s3", "gs", "as")
S3_EXTRA = "pip install 'trtrepo[s3]'  (boto3)"
GCS_EXTRA = "pip install 'trtrepo[gcs]'  (google-cloud-storage)"
AZURE_EXTRA = "pip install 'trtrepo[azure]'  (azure-storage-blob)"
EXTRAS = {"s3": S3_EXTRA, "gs": GCS_EXTRA, "as": AZURE_EXTRA}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_GCS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,61}[a-z0-9]$")
_AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_AZURE_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9\-]{1,61}[a-z0-9]$")


def is_url(text: object) -> bool:
    """True when ``text`` names an object-store repository (``<scheme>://...``) rather than a local folder."""
    return isinstance(text, str) and "://" in text


@dataclass(frozen=True)
class RepositoryURL:
    """One repository in an object store.

    Attributes:
        scheme: ``s3``, ``gs`` or ``as``.
        bucket: The bucket (for ``as://``: the container).
        prefix: The key prefix of the repository, no leading or trailing ``/`` ('' = the bucket's root).
        endpoint: ``http(s)://host:port`` of an S3-compatible store (MinIO, moto), a GCS emulator, or an Azure Blob
            endpoint (Azurite: the account is the first path part); None for the cloud's own endpoint.
        account: The Azure storage account (``as://`` only).
    """

    scheme: str
    bucket: str
    prefix: str
    endpoint: str | None = None
    account: str | None = None

    def key(self, rel: str) -> str:
        """The object key of the repository-relative path ``rel``."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @property
    def triton_url(self) -> str:
        """What ``tritonserver --model-repository`` takes (Triton's own ``s3://endpoint/bucket/prefix`` form)."""
        where = f"{self.endpoint}/" if self.endpoint and self.scheme == "s3" else ""
        return f"{self.scheme}://{where}{str(self).partition('://')[2]}"

    def __str__(self) -> str:
        account = f"{self.account}/" if self.account else ""
        return f"{self.scheme}://{account}{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def parse_url(text: str, endpoint_url: str | None = None) -> RepositoryURL:
    """Parse a repository URL that trtrepo reads and writes (every scheme of :data:`SCHEMES`).

    Args:
        text: ``s3://bucket/prefix``, ``s3://http://host:port/bucket/prefix`` (Triton's form), ``gs://bucket/prefix``
            or ``as://account/container/prefix``.
        endpoint_url: ``--endpoint-url`` (an S3-compatible store, a GCS emulator, an Azure Blob endpoint); must
            agree with an endpoint inside ``text``.

    Raises:
        SpecError: Not a URL of a known scheme, no bucket, a malformed endpoint, or two different endpoints.
    """
    return split_url(text, endpoint_url)


def split_url(text: str, endpoint_url: str | None = None) -> RepositoryURL:
    """The one grammar of repository URLs, for every scheme Triton reads (``s3``, ``gs``, ``as``): what the URL
    names, whether or not trtrepo can read that store (``trtrepo deploy`` writes manifests for all three).

    Raises:
        SpecError: Not a URL of a known scheme, no bucket, a malformed endpoint, or two different endpoints.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in SCHEMES:
        raise SpecError(f"repository URL {text!r}: the scheme must be one of "
                        f"{', '.join(s + '://' for s in SCHEMES)}")
    inner = None
    if scheme == "s3" and rest.startswith(("http://", "https://")):
        proto, _, tail = rest.partition("://")
        host, slash, rest = tail.partition("/")
        if not re.match(r"^[^/:\s]+:\d+$", host) or not slash:  # Triton's form needs the port
            raise SpecError(f"repository URL {text!r}: the S3 endpoint must be {proto}://host:port before the bucket "
                            f"(s3://{proto}://HOST:PORT/BUCKET/PREFIX)")
        inner = f"{proto}://{host}"
    account = None
    if scheme == "as":
        account, _, rest = rest.partition("/")
        if not _AZURE_ACCOUNT.match(account):
            raise SpecError(f"repository URL {text!r}: {account!r} is not a storage account name (3-24 lower-case "
                            "letters and digits: as://ACCOUNT/CONTAINER/PREFIX)")
    bucket, _, prefix = rest.partition("/")
    if scheme == "as" and not _AZURE_CONTAINER.match(bucket):
        raise SpecError(f"repository URL {text!r}: {bucket!r} is not a container name (3-63 characters: lower-case "
                        "letters, digits, single '-': as://ACCOUNT/CONTAINER/PREFIX)")
    if scheme != "as" and not (_GCS_BUCKET if scheme == "gs" else _BUCKET).match(bucket):
        raise SpecError(f"repository URL {text!r}: {bucket!r} is not a bucket name (3-63 characters: lower-case "
                        "letters, digits, '.', '-')")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise SpecError(f"repository URL {text!r}: the prefix {prefix!r} has an empty, '.' or '..' part")
    endpoint = _endpoint(endpoint_url, text) if endpoint_url else None
    if inner and endpoint and inner != endpoint:
        raise SpecError(f"repository URL {text!r} names endpoint {inner}, --endpoint-url says {endpoint}")
    return RepositoryURL(scheme=scheme, bucket=bucket, prefix=prefix, endpoint=inner or endpoint, account=account)


def _endpoint(value: str, text: str) -> str:
    value = value.rstrip("/")
    proto, sep, host = value.partition("://")
    if proto not in ("http", "https") or not sep or not host or "/" in host:
        raise SpecError(f"--endpoint-url {value!r} (for {text}): must be http(s)://HOST[:PORT]")
    return value
