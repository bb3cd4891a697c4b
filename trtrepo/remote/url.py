"""Repository URLs: ``s3://bucket/prefix``, Triton's endpoint form ``s3://http://host:port/bucket/prefix``, and the
schemes trtrepo names but cannot read yet (``gs://``, ``as://``). Pure parsing: no client library is imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trtrepo.errors import MissingDependencyError, SpecError

SCHEMES = ("s3", "gs", "as")
S3_EXTRA = "pip install 'trtrepo[s3]'  (boto3)"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def is_url(text: object) -> bool:
    """True when ``text`` names an object-store repository (``<scheme>://...``) rather than a local folder."""
    return isinstance(text, str) and "://" in text


@dataclass(frozen=True)
class RepositoryURL:
    """One repository in an object store.

    Attributes:
        scheme: ``s3`` (read and written), ``gs`` or ``as`` (recognised, refused: see :func:`parse_url`).
        bucket: The bucket (container).
        prefix: The key prefix of the repository, no leading or trailing ``/`` ('' = the bucket's root).
        endpoint: ``http(s)://host:port`` of an S3-compatible store (MinIO, moto), None for AWS itself.
    """

    scheme: str
    bucket: str
    prefix: str
    endpoint: str | None = None

    def key(self, rel: str) -> str:
        """The object key of the repository-relative path ``rel``."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    @property
    def triton_url(self) -> str:
        """What ``tritonserver --model-repository`` takes (Triton's own ``s3://endpoint/bucket/prefix`` form)."""
        where = f"{self.endpoint}/" if self.endpoint else ""
        return f"{self.scheme}://{where}{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


def parse_url(text: str, endpoint_url: str | None = None) -> RepositoryURL:
    """Parse a repository URL that trtrepo reads and writes (``s3://`` only).

    Args:
        text: ``s3://bucket/prefix`` or ``s3://http://host:port/bucket/prefix`` (Triton's form).
        endpoint_url: ``--endpoint-url`` (an S3-compatible store); must agree with an endpoint inside ``text``.

    Raises:
        SpecError: Not a URL of a known scheme, no bucket, a malformed endpoint, or two different endpoints.
        MissingDependencyError: ``gs://`` and ``as://``: trtrepo has no client for them yet (exit 3).
    """
    url = split_url(text, endpoint_url)
    if url.scheme != "s3":
        raise MissingDependencyError(
            f"repository URL {text!r}: {url.scheme}:// needs its client library, which this trtrepo does not support "
            f"yet (it reads and writes s3:// only: {S3_EXTRA})",
            hint="use the store's S3-compatible endpoint (GCS: --endpoint-url https://storage.googleapis.com with "
                 "HMAC keys), or mirror the repository to an S3-compatible store")
    return url


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
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise SpecError(f"repository URL {text!r}: {bucket!r} is not a bucket name (3-63 characters: lower-case "
                        "letters, digits, '.', '-')")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise SpecError(f"repository URL {text!r}: the prefix {prefix!r} has an empty, '.' or '..' part")
    endpoint = _endpoint(endpoint_url, text) if endpoint_url else None
    if inner and endpoint and inner != endpoint:
        raise SpecError(f"repository URL {text!r} names endpoint {inner}, --endpoint-url says {endpoint}")
    return RepositoryURL(scheme=scheme, bucket=bucket, prefix=prefix, endpoint=inner or endpoint)


def _endpoint(value: str, text: str) -> str:
    value = value.rstrip("/")
    proto, sep, host = value.partition("://")
    if proto not in ("http", "https") or not sep or not host or "/" in host:
        raise SpecError(f"--endpoint-url {value!r} (for {text}): must be http(s)://HOST[:PORT]")
    return value
