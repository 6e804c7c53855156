"""S3 and Glue requests retry throttling and 5xx with backoff, a bounded number of times, and fail
at once, with the usual one-line message, on an error that says what is wrong (403, 404).

Requests go through a proxy on 127.0.0.1 in front of the moto server that answers chosen requests
with an error itself, forwards the others, and records every one."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pyarrow.fs as pafs
import pytest

from lakehouse.contracts.tables import ORDERS
from lakehouse.environment import resources_for
from lakehouse.io import aws
from lakehouse.io.aws import REQUEST_ATTEMPTS, AwsConfig, AwsSetupError
from lakehouse.io.table_store import CommitStamp
from lakehouse.settings import load_settings
from lakehouse_tests.aws.server import REGION, AwsEnvironment, MotoAws
from lakehouse_tests.io.cdc import batch, event, state

STAMP = CommitStamp(run_id="run-0001", asset_key="silver/orders")
UPSTREAM_TIMEOUT = 30
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date", "proxy-connection"}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    target: str  # X-Amz-Target of a Glue request (e.g. "AWSGlue.GetTable"), "" for S3
    status: int  # what the client got
    injected: bool  # answered by the proxy, not forwarded


@dataclass
class Fault:
    matches: Callable[[str, str, str], bool]  # (method, path, target)
    status: int
    body: bytes
    content_type: str
    times: int | None  # None: every matching request


def s3_error(code: str, message: str) -> bytes:
    return f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>proxy</RequestId></Error>".encode()


@dataclass
class FaultyProxy:
    url: str
    seen: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_s3(self, status: int, code: str, *, path: Callable[[str], bool], times: int | None = None, method: str | None = None) -> None:
        """Answer S3 requests whose path satisfies ``path`` (and of ``method``) with an S3 error."""
        with self.lock:
            self.faults.append(Fault(
                lambda m, p, t: not t and path(p) and method in (None, m), status, s3_error(code, "injected by the test proxy"),
                "application/xml", times,
            ))

    def fail_glue(self, operation: str, status: int, code: str, *, times: int | None = None) -> None:
        body = f'{{"__type": "{code}", "message": "injected by the test proxy"}}'.encode()
        with self.lock:
            self.faults.append(Fault(lambda m, p, t: t == f"AWSGlue.{operation}", status, body, "application/x-amz-json-1.1", times))

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
            self.seen.clear()

    def fault_for(self, method: str, path: str, target: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if (fault.times is None or fault.times > 0) and fault.matches(method, path, target):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def requests(self, predicate: Callable[[Seen], bool]) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if predicate(s)]


def _handler(proxy: FaultyProxy, upstream: str) -> type[http.server.BaseHTTPRequestHandler]:
    host = urlparse(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while (size := int(self.rfile.readline().split(b";")[0].strip(), 16)) > 0:
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._body()
            path, target = urlparse(self.path).path, self.headers.get("X-Amz-Target", "")
            fault = proxy.fault_for(self.command, path, target)
            if fault is not None:
                proxy.record(Seen(self.command, path, target, fault.status, injected=True))
                payload = b"" if self.command == "HEAD" else fault.body
                self.send_response(fault.status)
                self.send_header("Content-Type", fault.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            connection = http.client.HTTPConnection(host.hostname, host.port, timeout=UPSTREAM_TIMEOUT)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            proxy.record(Seen(self.command, path, target, response.status, injected=False))
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            length = response.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    return Handler


@contextlib.contextmanager
def faulty_proxy(upstream: str) -> Iterator[FaultyProxy]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    proxy = FaultyProxy(f"http://127.0.0.1:{server.server_port}")
    server.RequestHandlerClass = _handler(proxy, upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="faulty-s3-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def proxy(moto: MotoAws) -> Iterator[FaultyProxy]:
    with faulty_proxy(moto.endpoint) as p:
        yield p


def _object(moto: MotoAws, env: AwsEnvironment, key: str, body: bytes) -> str:
    bucket = env.bucket("bronze")
    moto.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return f"{bucket}/{key}"


def _is(path: str) -> Callable[[str], bool]:
    return lambda p: p == path


def _statuses(seen: list[Seen]) -> list[int]:
    return [s.status for s in seen]


# ---- Arrow's S3 filesystem (Bronze files, the landing zone) -------------------------------------
def test_arrow_s3_retries_throttling_more_often_than_arrows_default_and_succeeds(aws_env, moto, proxy):
    location = _object(moto, aws_env, "retry/a.txt", b"hello")
    # One failure fewer than the attempts: Arrow's default strategy (3 attempts) would give up.
    proxy.fail_s3(503, "SlowDown", path=_is(f"/{location}"), times=REQUEST_ATTEMPTS - 1)
    with AwsConfig(REGION, s3_endpoint=proxy.url).s3_filesystem().open_input_stream(location) as f:
        assert f.read() == b"hello"
    seen = proxy.requests(lambda s: s.path == f"/{location}")
    assert _statuses(seen[: REQUEST_ATTEMPTS - 1]) == [503] * (REQUEST_ATTEMPTS - 1)
    assert all(s.injected for s in seen[: REQUEST_ATTEMPTS - 1])
    assert seen[REQUEST_ATTEMPTS - 1:] and all(200 <= s.status < 300 and not s.injected for s in seen[REQUEST_ATTEMPTS - 1:])


def test_arrow_s3_gives_up_after_the_configured_attempts(aws_env, moto, proxy):
    location = _object(moto, aws_env, "retry/b.txt", b"hello")
    proxy.fail_s3(503, "SlowDown", path=_is(f"/{location}"))
    with pytest.raises(OSError, match=r"HTTP status 503"):
        AwsConfig(REGION, s3_endpoint=proxy.url).s3_filesystem().open_input_stream(location)
    assert _statuses(proxy.requests(lambda s: s.path == f"/{location}")) == [503] * REQUEST_ATTEMPTS


def test_arrow_s3_access_denied_is_not_retried_and_says_what_to_do(aws_env, moto, proxy):
    bucket = aws_env.bucket("bronze")
    proxy.fail_s3(403, "AccessDenied", path=lambda p: p.startswith(f"/{bucket}"))
    config = AwsConfig(REGION, s3_endpoint=proxy.url)
    fs = config.s3_filesystem()
    with pytest.raises(AwsSetupError) as info:
        with aws.s3_errors(f"s3://{bucket}/bronze", "bronze tables", "LAKEHOUSE_BRONZE_BUCKET", config):
            fs.get_file_info(pafs.FileSelector(f"{bucket}/bronze", recursive=True))
    message = str(info.value)
    assert message.startswith(f"access denied to S3 bucket {bucket!r} (bronze tables, LAKEHOUSE_BRONZE_BUCKET)"), message
    assert "\n" not in message
    assert len(proxy.requests(lambda s: s.path.startswith(f"/{bucket}"))) == 1


def test_arrow_s3_missing_bucket_is_not_retried_and_says_what_to_do(aws_env, proxy):
    bucket = f"lakehouse-bronze-missing-{aws_env.name}"
    config = AwsConfig(REGION, s3_endpoint=proxy.url)
    with pytest.raises(AwsSetupError) as info:
        with aws.s3_errors(f"s3://{bucket}/bronze", "bronze tables", "LAKEHOUSE_BRONZE_BUCKET", config):
            config.s3_filesystem().get_file_info(pafs.FileSelector(f"{bucket}/bronze", recursive=True))
    message = str(info.value)
    assert f"S3 bucket {bucket!r} (bronze tables, LAKEHOUSE_BRONZE_BUCKET) does not exist at {proxy.url}" in message, message
    seen = proxy.requests(lambda s: s.path.startswith(f"/{bucket}"))
    assert _statuses(seen) == [404] and not seen[0].injected  # moto's own answer, asked once


# ---- boto3 clients (setup checks, conditional PUTs) ---------------------------------------------
def test_boto3_retries_throttling_and_5xx_a_bounded_number_of_times(aws_env, proxy):
    bucket = aws_env.bucket("silver")
    s3 = AwsConfig(REGION, s3_endpoint=proxy.url).client("s3")
    proxy.fail_s3(503, "SlowDown", path=_is(f"/{bucket}"), times=2, method="HEAD")
    s3.head_bucket(Bucket=bucket)
    assert _statuses(proxy.requests(lambda s: s.path == f"/{bucket}")) == [503, 503, 200]
    proxy.clear()
    # 500s back off in milliseconds: one failure fewer than the attempts gets through, one more does not.
    proxy.fail_s3(500, "InternalError", path=_is(f"/{bucket}"), times=REQUEST_ATTEMPTS - 1, method="HEAD")
    s3.head_bucket(Bucket=bucket)
    assert _statuses(proxy.requests(lambda s: s.path == f"/{bucket}")) == [500] * (REQUEST_ATTEMPTS - 1) + [200]
    proxy.clear()
    proxy.fail_s3(500, "InternalError", path=_is(f"/{bucket}"), method="HEAD")
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)
    assert _statuses(proxy.requests(lambda s: s.path == f"/{bucket}")) == [500] * REQUEST_ATTEMPTS


@pytest.mark.parametrize(("status", "code", "says"), [(403, "AccessDenied", "access denied to S3 bucket"), (404, "NoSuchBucket", "does not exist")])
def test_the_setup_check_does_not_retry_a_permanent_error_and_says_what_to_do(aws_env, proxy, status, code, says):
    bucket = aws_env.bucket("gold")
    proxy.fail_s3(status, code, path=_is(f"/{bucket}"))
    requirement = aws.Requirement("bucket", bucket, "gold tables", "LAKEHOUSE_GOLD_BUCKET")
    with pytest.raises(AwsSetupError) as info:
        aws.verify(AwsConfig(REGION, s3_endpoint=proxy.url, glue_endpoint=aws_env.endpoint), [requirement])
    message = str(info.value)
    assert message.startswith("AWS setup problem(s): ") and "\n" not in message
    assert f"{bucket!r} (gold tables, LAKEHOUSE_GOLD_BUCKET)" in message and says in message, message
    assert _statuses(proxy.requests(lambda s: s.path == f"/{bucket}")) == [status]


# ---- the table store: pyiceberg's S3 FileIO and Glue client -------------------------------------
@pytest.fixture
def store_via_proxy(aws_env, proxy, monkeypatch):
    """The aws environment's table store with S3 and Glue requests going through the proxy."""
    monkeypatch.setenv("LAKEHOUSE_S3_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("LAKEHOUSE_GLUE_ENDPOINT_URL", proxy.url)
    store = resources_for(load_settings())["store"].get_store()  # checks buckets and databases
    proxy.clear()
    return store


def test_the_tables_s3_fileio_retries_throttling_more_often_than_arrows_default(store_via_proxy, proxy):
    # The first Iceberg metadata file pyiceberg writes (through its FileIO, not the store's Arrow
    # filesystem) is refused one time fewer than the attempts: Arrow's default strategy would give up.
    first: list[str] = []

    def first_metadata_file(path: str) -> bool:
        if not first and path.endswith(".metadata.json"):
            first.append(path)
        return bool(first) and path == first[0]

    proxy.fail_s3(503, "SlowDown", path=first_metadata_file, times=REQUEST_ATTEMPTS - 1)
    result = store_via_proxy.merge(ORDERS, batch(event("a", 1)), STAMP)
    assert result.committed
    seen = proxy.requests(lambda s: s.path == first[0])
    assert _statuses(seen[: REQUEST_ATTEMPTS - 1]) == [503] * (REQUEST_ATTEMPTS - 1) and all(s.injected for s in seen[: REQUEST_ATTEMPTS - 1])
    # then the same request got through (pyiceberg first checks that the file does not exist: 404)
    assert not seen[REQUEST_ATTEMPTS - 1].injected and seen[REQUEST_ATTEMPTS - 1].status != 503
    assert any(s.method == "PUT" and s.status == 200 for s in seen)
    proxy.clear()
    assert state(store_via_proxy.read(ORDERS)) == {"a": ("placed", 1)}


def test_the_catalogs_glue_client_retries_throttling_and_gives_up_after_the_configured_attempts(store_via_proxy, proxy):
    proxy.fail_glue("GetTable", 400, "ThrottlingException", times=2)
    assert store_via_proxy.info(ORDERS).row_count == 0  # the table does not exist yet
    assert _statuses(proxy.requests(lambda s: s.target == "AWSGlue.GetTable"))[:3] == [400, 400, 400]
    assert [s.injected for s in proxy.requests(lambda s: s.target == "AWSGlue.GetTable")][:3] == [True, True, False]
    proxy.clear()
    # pyiceberg's own Glue client would try 11 times (glue.max-retries defaults to 10).
    proxy.fail_glue("GetTable", 500, "InternalServiceException")
    with pytest.raises(Exception, match="InternalServiceException"):
        store_via_proxy.info(ORDERS)
    assert _statuses(proxy.requests(lambda s: s.target == "AWSGlue.GetTable")) == [500] * REQUEST_ATTEMPTS
