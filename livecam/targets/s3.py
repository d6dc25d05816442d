"""`kind = "s3"`: an S3-compatible bucket (AWS S3, Cloudflare R2, Backblaze B2, MinIO,
Garage).

One boto3 client for the life of the process (reused connections), bounded timeouts
and retries, uploads from memory (nothing touches the SD card), the variants in
parallel, and `live.json` only after every image of the frame landed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from functools import partial
from typing import IO, TYPE_CHECKING, Any

from livecam.config import TargetConfig, hide_userinfo
from livecam.errors import PublishError
from livecam.frames import IMMUTABLE
from livecam.manifest import NAME as MANIFEST
from livecam.rendered import Rendered
from livecam.site import SiteFile, content_type
from livecam.targets.base import CheckStep, Step, Target, run_steps

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
JPEG_TYPE = "image/jpeg"
DELETE_BATCH = 1000  # keys per DeleteObjects request, S3's limit


class _DaemonPool:
    """A few daemon worker threads sharing one client.

    Unlike ThreadPoolExecutor, whose workers the interpreter joins at exit, an upload
    stuck in a read timeout never keeps a stopping service alive (SIGTERM exits in
    about a second, not after read_timeout x attempts)."""

    def __init__(self, workers: int) -> None:
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"s3-upload-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, fn = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as e:
                future.set_exception(e)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        future: Future[Any] = Future()
        self._jobs.put((future, fn))
        return future

    def shutdown(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return hide_userinfo(text)  # a user:password@ in endpoint_url


def explain(e: BaseException, bucket: str, key: str = "") -> str:
    """A one-line, actionable description of a boto3/botocore failure."""
    from botocore import exceptions as bx

    where = f"s3://{bucket}/{key}" if key else f"bucket {bucket!r}"
    if isinstance(e, bx.NoCredentialsError):
        return (
            "no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "use ~/.aws/credentials (optionally target.profile), or an instance role"
        )
    if isinstance(e, bx.ProfileNotFound):
        return f"{e} (check target.profile and ~/.aws/credentials)"
    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return f"cannot reach the S3 endpoint ({getattr(e, 'kwargs', {}).get('endpoint_url', e)})"
    if isinstance(e, bx.ReadTimeoutError):
        return "the S3 endpoint did not answer in time (target.read_timeout)"
    if isinstance(e, bx.ConnectionClosedError | bx.ConnectionError):
        return f"connection to the S3 endpoint failed: {type(e).__name__}"
    if isinstance(e, bx.ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        headers = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region") or err.get("Region")
        known = {
            "NoSuchBucket": f"bucket {bucket!r} does not exist at this endpoint "
            "(check target.bucket, target.endpoint_url and target.region)",
            "AccessDenied": f"access denied to {where}: the credentials need s3:PutObject, "
            "s3:GetObject and s3:DeleteObject on the prefix (see docs/s3.md)",
            "InvalidAccessKeyId": "the access key id is not known to this endpoint "
            "(wrong key, or keys for another provider or account)",
            "SignatureDoesNotMatch": "the secret access key does not match the access key id",
            "RequestTimeTooSkewed": "this machine's clock is too far off for S3 to accept "
            "requests: set the time (e.g. enable NTP: timedatectl set-ntp true)",
            "AccessControlListNotSupported": "the bucket does not allow ACLs: remove "
            "target.acl and make objects public with a bucket policy instead",
            "SlowDown": "the endpoint asks us to slow down (503 SlowDown)",
            "ServiceUnavailable": "the endpoint is unavailable (503)",
            "InternalError": "the endpoint had an internal error (500)",
        }
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301") or status == 301:
            hint = f"set target.region = {region!r}" if region else "set target.region"
            return f"bucket {bucket!r} is in another region: {hint}"
        if code in known:
            return known[code]
        if status == 404 and code in ("404", "NotFound"):
            return f"{where} not found"
        if status == 403:
            return f"access denied to {where} (HTTP 403 {code})"
        message = str(err.get("Message", "")).strip()
        return f"S3 error {code or status}" + (f": {message}" if message else "")
    if isinstance(e, bx.BotoCoreError):
        return f"S3 client error: {e}"
    return f"{type(e).__name__}: {e}"


def _add_content_md5(request: Any, **_: Any) -> None:
    body = request.body if isinstance(request.body, bytes) else b""
    if "Content-MD5" not in request.headers:
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode("ascii")


class S3Target(Target):
    """Publishes into `s3://bucket/prefix` on AWS or any S3-compatible endpoint."""

    can_delete = True

    def __init__(
        self,
        cfg: TargetConfig,
        stop: threading.Event | None = None,
        client: S3Client | None = None,
    ) -> None:
        self.cfg = cfg
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix
        self._stop = stop or threading.Event()
        self._client = client
        self._client_lock = threading.Lock()
        self._pool: _DaemonPool | None = None
        self._site_state: dict[str, tuple[str, str, str]] = {}

    # --- the client --------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        # Made once, on first use, under a lock: upload threads may all ask at once.
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> S3Client:
        import boto3
        from botocore import exceptions as bx
        from botocore.config import Config

        cfg = self.cfg
        config = Config(
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            retries={"mode": "standard", "total_max_attempts": cfg.max_attempts},
            max_pool_connections=cfg.workers + 2,
            tcp_keepalive=True,
            user_agent_extra="livecam",
            # botocore >= 1.36 adds CRC32 checksums (aws-chunked trailers) to every PUT by
            # default; R2, B2, older MinIO and others reject them. Only when required.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        if cfg.addressing_style != "auto":
            # With an endpoint_url botocore uses path style unless told otherwise.
            config = config.merge(Config(s3={"addressing_style": cfg.addressing_style}))  # type: ignore[arg-type]
        try:
            session = boto3.session.Session(
                profile_name=cfg.profile or None,
                aws_access_key_id=cfg.access_key_id or None,
                aws_secret_access_key=cfg.secret_access_key or None,
                region_name=cfg.region or None,
            )
            return session.client("s3", endpoint_url=cfg.endpoint_url or None, config=config)
        except bx.BotoCoreError as e:
            raise PublishError(self._explain(e)) from e

    def _explain(self, e: BaseException, key: str = "") -> str:
        return _scrub(
            explain(e, self.bucket, key), (self.cfg.secret_access_key, self.cfg.access_key_id)
        )

    def describe(self) -> str:
        where = hide_userinfo(self.cfg.endpoint_url or "AWS")
        return f"s3://{self.bucket}/{self.prefix} at {where}"

    # --- objects -----------------------------------------------------------------

    def key(self, name: str) -> str:
        return self.prefix + name

    def put(
        self, name: str, body: bytes | IO[bytes], content: str, cache_control: str
    ) -> dict[str, Any]:
        """PUT one object from memory; raises PublishError with an explanation."""
        from botocore import exceptions as bx

        extra: dict[str, Any] = {}
        if self.cfg.acl:
            extra["ACL"] = self.cfg.acl
        if self.cfg.storage_class:
            extra["StorageClass"] = self.cfg.storage_class
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Body=body,
                ContentType=content,
                CacheControl=cache_control,
                **extra,
            )
        except (bx.BotoCoreError, bx.ClientError) as e:
            raise PublishError(self._explain(e, self.key(name))) from e
        return dict(response)

    def _pool_for_uploads(self) -> _DaemonPool:
        if self._pool is None:
            self._pool = _DaemonPool(self.cfg.workers)
        return self._pool

    def _wait(self, futures: Sequence[Future[Any]]) -> None:
        """Wait for uploads; give up at once when the service is stopping."""
        pending = set(futures)
        while pending:
            if self._stop.is_set():
                raise PublishError("stopping: abandoned the uploads in flight")
            _, pending = wait(pending, timeout=0.1)
        for f in futures:
            if (e := f.exception()) is not None:
                raise e if isinstance(e, PublishError) else PublishError(str(e))

    def publish(self, images: Sequence[Rendered], manifest: bytes) -> None:
        cache = self.cfg.cache_control
        pool = self._pool_for_uploads()
        futures = [
            pool.submit(
                partial(self.put, r.name, r.data, JPEG_TYPE, IMMUTABLE if r.immutable else cache)
            )
            for r in images
        ]
        # The manifest goes only after every image landed: if one failed, viewers keep
        # the previous, consistent frame.
        self._wait(futures)
        self._wait([pool.submit(partial(self.put, MANIFEST, manifest, JSON_TYPE, cache))])

    def publish_site(self, files: Iterable[SiteFile], *, verify: bool = False) -> list[str]:
        changed = []
        for f in files:
            want = (f'"{f.md5}"', content_type(f.name), self.cfg.site_cache_control)
            have = None if verify else self._site_state.get(f.name)
            if have is None:
                have = self._remote_state(f.name)
            if have != want:
                # (Where ETags are not MD5s, e.g. SSE-KMS, this uploads once per start.)
                self.put(f.name, f.data, want[1], want[2])
                changed.append(f.name)
            self._site_state[f.name] = want
        return changed

    def delete(self, names: Sequence[str]) -> None:
        from botocore import exceptions as bx

        names = list(names)
        for i in range(0, len(names), DELETE_BATCH):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": self.key(n)} for n in names[i : i + DELETE_BATCH]
            ]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
            except (bx.BotoCoreError, bx.ClientError) as e:
                raise PublishError(f"cannot delete old frames: {self._explain(e)}") from e
            if errors := response.get("Errors"):
                first = errors[0]
                raise PublishError(
                    f"cannot delete {len(errors)} old frame object(s), e.g. "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self._remote_state(name) is None]

    def _remote_state(self, name: str) -> tuple[str, str, str] | None:
        """ETag, Content-Type and Cache-Control of a page file (one HEAD), None if absent."""
        from botocore import exceptions as bx

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except bx.ClientError as e:
            if e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise PublishError(self._explain(e, self.key(name))) from e
        except bx.BotoCoreError as e:
            raise PublishError(self._explain(e, self.key(name))) from e
        return (
            str(head.get("ETag", "")),
            str(head.get("ContentType", "")),
            str(head.get("CacheControl", "")),
        )

    def read_manifest(self) -> bytes | None:
        from botocore import exceptions as bx

        key = self.key(MANIFEST)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return bytes(response["Body"].read(1_000_000))
        except bx.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise PublishError(f"cannot read the manifest: {self._explain(e, key)}") from e
        except bx.BotoCoreError as e:
            raise PublishError(f"cannot read the manifest: {self._explain(e, key)}") from e

    # --- plain objects ---------------------------------------------------------------

    def put_object(self, name: str, data: bytes, *, content_type: str, cache_control: str) -> None:
        self.put(name, data, content_type, cache_control)

    def put_file(self, name: str, path: str, *, content_type: str, cache_control: str) -> None:
        try:
            with open(path, "rb") as f:
                self.put(name, f, content_type, cache_control)
        except OSError as e:
            raise PublishError(f"cannot read {path}: {e.strerror or e}") from e

    def read_object(self, name: str, limit: int = 16 << 20) -> bytes | None:
        from botocore import exceptions as bx

        key = self.key(name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            data = bytes(response["Body"].read(limit + 1))
        except bx.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise PublishError(self._explain(e, key)) from e
        except bx.BotoCoreError as e:
            raise PublishError(self._explain(e, key)) from e
        if len(data) > limit:
            raise PublishError(f"s3://{self.bucket}/{key} is larger than {limit} bytes")
        return data

    def _list(self, prefix: str, **kwargs: Any) -> list[dict[str, Any]]:
        """The pages of a ListObjectsV2 under `prefix` (one request per 1,000 keys)."""
        from botocore import exceptions as bx

        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self.bucket, Prefix=self.key(prefix), **kwargs)
            return [dict(page) for page in pages]
        except (bx.BotoCoreError, bx.ClientError) as e:
            raise PublishError(self._explain(e, self.key(prefix))) from e

    def list_objects(self, prefix: str) -> list[str]:
        n = len(self.prefix)
        return sorted(
            str(o["Key"])[n:] for page in self._list(prefix) for o in page.get("Contents", [])
        )

    def list_folders(self, prefix: str) -> list[str]:
        n = len(self.prefix)
        return sorted(
            str(p["Prefix"])[n:]
            for page in self._list(prefix, Delimiter="/")
            for p in page.get("CommonPrefixes", [])
        )

    def delete_objects(self, names: Sequence[str]) -> None:
        from botocore import exceptions as bx

        self._send_content_md5()
        for start in range(0, len(names), 1000):  # DeleteObjects takes at most 1,000 keys
            keys: list[Any] = [{"Key": self.key(n)} for n in names[start : start + 1000]]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
            except (bx.BotoCoreError, bx.ClientError) as e:
                raise PublishError(self._explain(e, keys[0]["Key"])) from e
            if errors := response.get("Errors"):
                first = errors[0]
                raise PublishError(
                    f"cannot delete s3://{self.bucket}/{first.get('Key')}: "
                    f"{first.get('Code')} {first.get('Message', '')}".strip()
                )

    # --- lifecycle rules (S3 only: `livecam lifecycle`) ----------------------------------

    def lifecycle_rules(self) -> list[dict[str, Any]]:
        """The bucket's lifecycle rules (empty when it has none)."""
        from botocore import exceptions as bx

        try:
            response = self.client.get_bucket_lifecycle_configuration(Bucket=self.bucket)
        except bx.ClientError as e:
            if e.response.get("Error", {}).get("Code") == "NoSuchLifecycleConfiguration":
                return []
            raise PublishError(self._explain(e)) from e
        except bx.BotoCoreError as e:
            raise PublishError(self._explain(e)) from e
        return [dict(rule) for rule in response.get("Rules", [])]

    def put_lifecycle_rules(self, rules: list[dict[str, Any]]) -> None:
        """Replace the bucket's lifecycle rules with `rules` (all of them)."""
        from botocore import exceptions as bx

        self._send_content_md5()  # required by PutBucketLifecycleConfiguration too
        try:
            self.client.put_bucket_lifecycle_configuration(
                Bucket=self.bucket,
                LifecycleConfiguration={"Rules": rules},  # type: ignore[typeddict-item]
            )
        except (bx.BotoCoreError, bx.ClientError) as e:
            raise PublishError(self._explain(e)) from e

    def _send_content_md5(self) -> None:
        """Give DeleteObjects (and lifecycle rules) a Content-MD5 header: botocore >= 1.36
        sends only a CRC32, and MinIO, Ceph and other S3 servers refuse these requests
        without it (MissingContentMD5)."""
        if getattr(self, "_md5_hooked", False):
            return
        for operation in ("DeleteObjects", "PutBucketLifecycleConfiguration"):
            self.client.meta.events.register(f"before-sign.s3.{operation}", _add_content_md5)
        self._md5_hooked = True

    def check(self, report: Callable[[CheckStep], None]) -> bool:
        from botocore import exceptions as bx

        name = f".livecam-probe-{socket.gethostname()}-{os.getpid()}.txt"
        key = self.key(name)
        payload = b"livecam probe " + os.urandom(8).hex().encode()

        def get() -> None:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            if body != payload:
                raise ValueError(f"read back {len(body)} bytes that differ from those written")

        def explain(e: Exception) -> str | None:
            if isinstance(e, PublishError | ValueError):
                return str(e)
            if isinstance(e, bx.BotoCoreError | bx.ClientError):
                return self._explain(e, key)
            return None

        steps: list[Step] = [
            (f"put s3://{self.bucket}/{key}",
             lambda: self.put(name, payload, "text/plain", "no-store")),
            (f"get s3://{self.bucket}/{key}", get),
            (f"delete s3://{self.bucket}/{key}",
             lambda: self.client.delete_object(Bucket=self.bucket, Key=key)),
        ]  # fmt: skip
        return run_steps(steps, report, explain)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
