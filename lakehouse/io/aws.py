"""S3 and Glue access for the aws environment: clients from one configuration, a check of what must
exist before anything runs, and AWS errors turned into messages that say what to do.

Credentials always come from the standard chain (environment, shared profile, container or instance
role); nothing here accepts or logs a secret.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

import pyarrow.fs as pafs

from lakehouse.setting_names import SettingsError, bucket_variable, database_variable

DOCS = "docs/aws.md"
_S3_ACTIONS = "s3:ListBucket on arn:aws:s3:::{b} and s3:GetObject, s3:PutObject, s3:DeleteObject on arn:aws:s3:::{b}/*"
_GLUE_ACTIONS = (
    "glue:GetDatabase, glue:GetTable(s), glue:CreateTable, glue:UpdateTable, glue:GetPartitions and "
    "glue:BatchCreatePartition on the catalog, the database {d} and its tables"
)


class AwsSetupError(SettingsError):
    """An AWS resource the configuration names is missing, unreachable or not allowed."""


# ---- retries of transient failures -----------------------------------------------------------
# Attempts per S3 or Glue request (the first try included), for every client the lakehouse makes:
# boto3's, Arrow's S3 filesystem and pyiceberg's S3 FileIO. The SDKs' standard strategies retry
# throttling (503 SlowDown, ThrottlingException) and 5xx with randomized exponential backoff and
# never retry an error that says what is wrong (403, 404 NoSuchBucket, a refused signature). Five
# attempts ride out several seconds of throttling (botocore waits up to 1, 2, 4 and 8 s, Arrow
# about 1-3 s each time) and stay short enough that a request that cannot succeed fails within
# seconds; a longer outage is for the step's retry policy, which reruns the whole step
# (lakehouse.assets.transformation.TRANSIENT_RETRY_POLICY).
REQUEST_ATTEMPTS = 5


class S3Retries(pafs.AwsStandardS3RetryStrategy):
    """Arrow's standard AWS retry strategy with REQUEST_ATTEMPTS. pyiceberg's S3 FileIO takes a
    strategy only as a class it builds without arguments: the ``s3.retry-strategy-impl`` catalog
    property (pyiceberg/io/pyarrow.py, ``_initialize_s3_fs``) names this one."""

    def __init__(self) -> None:
        super().__init__(max_attempts=REQUEST_ATTEMPTS)


S3_RETRY_STRATEGY_IMPL = f"{S3Retries.__module__}.{S3Retries.__qualname__}"


@dataclass(frozen=True)
class AwsConfig:
    """Region and (optional) endpoints of the AWS services the lakehouse uses."""

    region: str | None
    s3_endpoint: str | None = None
    glue_endpoint: str | None = None

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg GlueCatalog properties: Glue client and S3 FileIO in the same region and endpoints."""
        props = {"type": "glue"}
        if self.region:
            props.update({"glue.region": self.region, "client.region": self.region, "s3.region": self.region})
        if self.glue_endpoint:
            props["glue.endpoint"] = self.glue_endpoint
        if self.s3_endpoint:
            props["s3.endpoint"] = self.s3_endpoint
        return props

    @classmethod
    def from_catalog_properties(cls, props: Mapping[str, str]) -> AwsConfig:
        region = props.get("s3.region") or props.get("client.region") or props.get("glue.region")
        return cls(region, props.get("s3.endpoint"), props.get("glue.endpoint"))

    def client(self, service: str, *, endpoint: str | None = None):
        import boto3
        from botocore.config import Config

        if endpoint is None:
            endpoint = {"s3": self.s3_endpoint, "glue": self.glue_endpoint}.get(service)
        # Bounded waits: a wrong endpoint or a blocked network fails in seconds, not minutes.
        # Standard mode retries throttling and 5xx with backoff (total_max_attempts counts the first
        # try, unlike max_attempts). Not adaptive: its client-side rate limiter, which botocore calls
        # experimental, helps many threads sharing one client, while each step makes a few calls.
        retries = {"mode": "standard", "total_max_attempts": REQUEST_ATTEMPTS}
        config = Config(connect_timeout=10, read_timeout=60, retries=retries)
        return boto3.session.Session().client(service, region_name=self.region, endpoint_url=endpoint, config=config)

    def s3_filesystem(self) -> pafs.S3FileSystem:
        """Arrow's S3 filesystem with the same region and endpoint as the catalog's FileIO."""
        kwargs: dict = {"connect_timeout": 10, "retry_strategy": S3Retries()}
        if self.region:
            kwargs["region"] = self.region
        if self.s3_endpoint:
            url = urlparse(self.s3_endpoint)
            kwargs.update(endpoint_override=url.netloc, scheme=url.scheme)
        return pafs.S3FileSystem(**kwargs)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> (bucket, key/prefix)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


# ---- checks before first use -----------------------------------------------------------------
@dataclass(frozen=True)
class Requirement:
    """Something the configuration names that must exist: a bucket or a Glue database."""

    kind: str  # "bucket" | "database"
    name: str
    purpose: str  # e.g. "silver tables", "the landing zone"
    variable: str  # the setting that names it


def store_requirements(locations: Mapping[str, str], namespaces: Mapping[str, str]) -> list[Requirement]:
    reqs = []
    for layer, location in sorted(locations.items()):
        if location.startswith("s3://"):
            reqs.append(Requirement("bucket", split_s3_uri(location)[0], f"{layer} tables", bucket_variable(layer)))
    for layer, namespace in sorted(namespaces.items()):
        reqs.append(Requirement("database", namespace, f"{layer} tables", database_variable(layer)))
    return reqs


def landing_requirements(root: str) -> list[Requirement]:
    return [Requirement("bucket", split_s3_uri(root)[0], "the landing zone", "LAKEHOUSE_LANDING")]


_verified: set[tuple] = set()
_verified_lock = threading.Lock()


def verify(aws: AwsConfig, requirements: list[Requirement]) -> None:
    """Check every bucket and database once per process, raising one AwsSetupError that lists each
    problem with what to do about it. Only success is remembered, so a fixed setup is seen at once."""
    key = (aws, tuple(requirements))
    with _verified_lock:
        if key in _verified:
            return
    problems: list[str] = []
    s3 = glue = None
    for req in requirements:
        try:
            if req.kind == "bucket":
                s3 = s3 or aws.client("s3")
                response = s3.head_bucket(Bucket=req.name)
                actual = response.get("BucketRegion") or response["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region")
                if aws.region and actual and actual != aws.region:
                    problems.append(wrong_region(req, actual, aws.region))
            else:
                glue = glue or aws.client("glue")
                glue.get_database(Name=req.name)
        except Exception as exc:
            problems.append(explain(exc, req, aws))
    if problems:
        raise AwsSetupError("AWS setup problem(s): " + " | ".join(dict.fromkeys(problems)) + f" (see {DOCS})")
    with _verified_lock:
        _verified.add(key)


# ---- messages ---------------------------------------------------------------------------------
def missing(req: Requirement, aws: AwsConfig) -> str:
    if req.kind == "bucket":
        where = f" at {aws.s3_endpoint}" if aws.s3_endpoint else ""
        if req.variable == "LAKEHOUSE_LANDING":  # the producers' bucket, not one terraform/ makes per layer
            return (
                f"S3 bucket {req.name!r} ({req.purpose}, {req.variable}) does not exist{where}: set "
                f"{req.variable} to the s3://bucket/prefix where source files arrive, or create that bucket"
            )
        return (
            f"S3 bucket {req.name!r} ({req.purpose}, {req.variable}) does not exist{where}: create it "
            f"(with terraform/ or by hand, one per layer) or set {req.variable} to an existing bucket"
        )
    return (
        f"Glue database {req.name!r} ({req.purpose}, {req.variable}) does not exist in region {aws.region}: "
        f"create it (with terraform/ or by hand, one per layer) or set {req.variable} to an existing database; "
        "if it exists in another region, fix LAKEHOUSE_AWS_REGION"
    )


def denied(req: Requirement, aws: AwsConfig) -> str:
    who = caller_identity(aws)
    actions = _S3_ACTIONS.format(b=req.name) if req.kind == "bucket" else _GLUE_ACTIONS.format(d=req.name)
    kind = "S3 bucket" if req.kind == "bucket" else "Glue database"
    return (
        f"access denied to {kind} {req.name!r} ({req.purpose}, {req.variable}) for {who}: grant {actions}, "
        "or check that the credentials in use (AWS_PROFILE, AWS_ACCESS_KEY_ID, the task role) are the intended ones"
    )


def wrong_region(req: Requirement, actual: str, configured: str | None) -> str:
    return (
        f"S3 bucket {req.name!r} ({req.purpose}, {req.variable}) is in region {actual}, but LAKEHOUSE_AWS_REGION is "
        f"{configured}: set LAKEHOUSE_AWS_REGION={actual} (the Glue databases must be in that region too) or use a "
        f"bucket in {configured}"
    )


def no_credentials() -> str:
    return (
        "no AWS credentials found: set AWS_PROFILE (shared config), or AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY in the environment, or run with a role (ECS task role, instance profile)"
    )


def unreachable(endpoint: str | None, region: str | None) -> str:
    if endpoint:
        return f"cannot reach {endpoint} (LAKEHOUSE_AWS_ENDPOINT_URL / LAKEHOUSE_S3_ENDPOINT_URL / LAKEHOUSE_GLUE_ENDPOINT_URL): check the URL and the network"
    return f"cannot reach AWS in region {region}: check LAKEHOUSE_AWS_REGION and the network (NAT gateway or VPC endpoints for S3, Glue and STS)"


def caller_identity(aws: AwsConfig) -> str:
    """The identity the credentials resolve to (an ARN), for access-denied messages; best effort."""
    try:
        # Against a single test endpoint (both services on one URL) STS lives there too.
        same = aws.s3_endpoint if aws.s3_endpoint and aws.s3_endpoint == aws.glue_endpoint else None
        if (aws.s3_endpoint or aws.glue_endpoint) and not same:
            return "the configured credentials"
        return aws.client("sts", endpoint=same).get_caller_identity()["Arn"]
    except Exception:
        return "the configured credentials"


def explain(exc: BaseException, req: Requirement, aws: AwsConfig) -> str:
    """One sentence for a failed S3/Glue call about ``req``."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return no_credentials()
    if isinstance(exc, NoRegionError):
        return "no AWS region: set LAKEHOUSE_AWS_REGION"
    if isinstance(exc, EndpointConnectionError):
        return unreachable(aws.s3_endpoint if req.kind == "bucket" else aws.glue_endpoint, aws.region)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if code in ("404", "NoSuchBucket", "EntityNotFoundException") or status == 404:
            return missing(req, aws)
        if code in ("301", "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException") or status == 301:
            return wrong_region(req, headers.get("x-amz-bucket-region", "another region"), aws.region)
        if code in ("403", "AccessDenied", "AccessDeniedException", "AllAccessDisabled") or status == 403:
            return denied(req, aws)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "InvalidClientTokenId"):
            return f"the AWS credentials in use were refused ({code}): refresh them (aws sso login, new keys) or fix AWS_PROFILE"
        return f"{req.kind} {req.name!r} ({req.purpose}, {req.variable}): {code or status}: {error.get('Message', exc)}"
    return f"{req.kind} {req.name!r} ({req.purpose}, {req.variable}): {exc}"


# ---- errors during work -----------------------------------------------------------------------
_ARROW_S3_ERROR = re.compile(r"AWS Error (?P<code>[A-Z_]+)(?: \(HTTP status (?P<status>\d+)\))?")


@contextlib.contextmanager
def s3_errors(uri: str, purpose: str, variable: str, aws: AwsConfig | None = None) -> Iterator[None]:
    """Turn Arrow's S3 errors on ``uri`` (missing bucket, access denied, wrong region, no
    credentials) into an AwsSetupError that says what to do; other errors pass unchanged."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:  # boto3 calls (conditional PUTs of Bronze files)
        if not uri.startswith("s3://"):
            raise
        req = Requirement("bucket", split_s3_uri(uri)[0], purpose, variable)
        raise AwsSetupError(f"{explain(exc, req, aws or AwsConfig(None))} (while accessing {uri}; see {DOCS})") from exc
    except OSError as exc:
        match = _ARROW_S3_ERROR.search(str(exc))
        if not uri.startswith("s3://") or match is None:
            raise
        code, status = match["code"], match["status"]
        req = Requirement("bucket", split_s3_uri(uri)[0], purpose, variable)
        aws = aws or AwsConfig(None)
        if code == "NO_SUCH_BUCKET":
            message = missing(req, aws)
        elif code == "ACCESS_DENIED" or status == "403":
            message = denied(req, aws)
        elif status == "301" or "region" in str(exc).lower():
            message = wrong_region(req, "another region", aws.region)
        elif code in ("INVALID_ACCESS_KEY_ID", "SIGNATURE_DOES_NOT_MATCH", "UNRECOGNIZED_CLIENT"):
            message = f"the AWS credentials in use were refused ({code}): refresh them or fix AWS_PROFILE"
        elif "credentials" in str(exc).lower():
            message = no_credentials()
        else:
            raise
        raise AwsSetupError(f"{message} (while accessing {uri}; see {DOCS})") from exc
