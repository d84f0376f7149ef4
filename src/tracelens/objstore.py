"""Object-storage locations: URLs for the store and for inputs (``s3://``, ``gs://``, ``az://``, ``file://``).

Contract:

- ``is_url(text)`` tells a URL of a scheme we handle from a local path; ``parse(url)`` gives its ``Location``
  (scheme, bucket or container, key prefix) or raises ``ObjectStoreError``.
- ``storage_options(loc)`` are the options both Delta Lake (delta-rs) and obstore take, since both sit on the
  Rust ``object_store`` crate. Credentials come from the usual chain and are never written anywhere: for S3
  the ``AWS_*`` environment variables, else the shared config and credentials files (``AWS_PROFILE``,
  ``~/.aws``, SSO caches, and on a cloud machine its role) through botocore when it is installed; for GCS
  the ``GOOGLE_*`` variables object_store reads itself, and ``STORAGE_EMULATOR_HOST`` for an emulator; for
  Azure ``AZURE_STORAGE_CONNECTION_STRING`` or the ``AZURE_STORAGE_*`` account, key, SAS and endpoint
  variables (Azurite included), identities through object_store (docs/object-storage.md lists them all).
  Delta commits are conditional puts (S3 ``If-None-Match``, GCS ``x-goog-if-generation-match``, Azure
  ``If-None-Match``), which delta-rs sends whatever the options (docs/table-formats.md measured it on S3):
  the services and the servers we test against honour them.
- ``connect(loc)`` is an obstore client with short timeouts and no retries, and ``preflight(loc, write)``
  checks, before any work, that the location answers, that credentials exist and are accepted, and (for a
  store) that we may write there: each failure is one ``ObjectStoreError`` line, raised within seconds
  rather than after a storm of retries.

Nothing here is imported by code that only reads local files: obstore and botocore live in the
``tracelens[cloud]`` extra, and a URL without it fails with one line naming the extra.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

CLOUD_EXTRA_HINT = "object storage needs the cloud extra: pip install 'tracelens[cloud]'"

# scheme as written -> the family it belongs to
_SCHEMES = {
    "s3": "s3", "s3a": "s3",
    "gs": "gs", "gcs": "gs",
    "az": "az", "abfs": "az", "abfss": "az", "azure": "az",
    "file": "file",
}
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.S)
# The preflight's own limits: a dead endpoint or a black-holed address answers within these, not after the
# crate's default of 10 retries with backoff.
PREFLIGHT_CONNECT_TIMEOUT = "3s"
PREFLIGHT_TIMEOUT = "10s"


class ObjectStoreError(Exception):
    """A location we cannot use; the message is one line meant for the user."""


@dataclass(frozen=True)
class Location:
    """A parsed URL: ``family`` is s3, gs, az or file; ``bucket`` is empty for file URLs."""

    url: str  # as given, without trailing slashes
    family: str
    bucket: str
    prefix: str  # key prefix inside the bucket (no leading or trailing slash); the path for file URLs

    def child(self, *parts: str) -> str:
        """The URL of a key below this location."""
        return "/".join([self.url, *(p.strip("/") for p in parts if p)])

    @property
    def local_path(self) -> str | None:
        """The directory of a ``file://`` URL, else None."""
        return "/" + self.prefix if self.family == "file" else None


def is_url(text: object) -> bool:
    """True for ``scheme://...`` with a scheme we handle (``http`` and friends are not store URLs)."""
    if not isinstance(text, str):
        return False
    m = _URL.match(text)
    return bool(m) and m.group("scheme").lower() in _SCHEMES


def parse(url: str) -> Location:
    """The ``Location`` of ``url``; ``ObjectStoreError`` for an unknown scheme or a URL without a bucket."""
    m = _URL.match(url or "")
    if not m:
        raise ObjectStoreError(f"not a URL: {url!r} (expected s3://bucket/prefix, gs://, az://container/... or file:///path)")
    scheme = m.group("scheme").lower()
    family = _SCHEMES.get(scheme)
    if family is None:
        raise ObjectStoreError(f"unsupported URL scheme {scheme!r} in {url!r} (use s3://, gs://, az:// or file://)")
    rest = m.group("rest")
    if family == "file":
        if rest.startswith("localhost/"):
            rest = rest[len("localhost"):]
        if not rest.startswith("/"):
            raise ObjectStoreError(f"a file URL needs an absolute path: {url!r} (file:///abs/path)")
        path = os.path.normpath(rest)
        return Location(url="file://" + path.rstrip("/") if path != "/" else "file:///", family="file", bucket="",
                        prefix=path.strip("/"))
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ObjectStoreError(f"no bucket in {url!r} (expected {scheme}://bucket/prefix)")
    prefix = prefix.strip("/")
    if any(p in (".", "..") for p in prefix.split("/") if p):
        raise ObjectStoreError(f"'.' and '..' are not allowed in an object-storage prefix: {url!r}")
    return Location(url=f"{scheme}://{bucket}" + (f"/{prefix}" if prefix else ""), family=family, bucket=bucket,
                    prefix=prefix)


def _aws_from_profile_chain() -> dict[str, str]:
    """Credentials and region from botocore's chain (profiles, SSO, container and instance roles); {} without
    botocore or when the chain finds nothing. The values are used for this process only."""
    try:
        import botocore.session
    except ImportError:
        return {}
    session = botocore.session.Session()
    # one quick try at the instance metadata service, not botocore's default of a second one after 1 s
    session.set_config_variable("metadata_service_num_attempts", 1)
    session.set_config_variable("metadata_service_timeout", 1)
    try:
        creds = session.get_credentials()
        frozen = creds.get_frozen_credentials() if creds is not None else None
    except Exception as e:  # a broken profile file, an expired SSO token: botocore's own message says which
        raise ObjectStoreError(f"AWS credentials: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    out: dict[str, str] = {}
    if frozen is not None and frozen.access_key and frozen.secret_key:
        out["aws_access_key_id"] = frozen.access_key
        out["aws_secret_access_key"] = frozen.secret_key
        if frozen.token:
            out["aws_session_token"] = frozen.token
    region = session.get_config_variable("region")
    if region:
        out["aws_region"] = region
    return out


def storage_options(loc: Location) -> dict[str, str]:
    """Options for delta-rs and obstore at ``loc`` (credentials included; never persist them)."""
    if loc.family == "gs":
        return _gcs_options(os.environ)
    if loc.family == "az":
        return _azure_options(os.environ)
    if loc.family != "s3":
        return {}
    env = os.environ
    opts: dict[str, str] = {}
    if not (env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY")):
        opts.update(_aws_from_profile_chain())
    else:
        opts["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
        opts["aws_secret_access_key"] = env["AWS_SECRET_ACCESS_KEY"]
        if env.get("AWS_SESSION_TOKEN"):
            opts["aws_session_token"] = env["AWS_SESSION_TOKEN"]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        opts["aws_region"] = region
    opts.setdefault("aws_region", "us-east-1")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            opts["aws_allow_http"] = "true"
    return opts


# Azurite's account and key: published with the emulator, valid nowhere else.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_GCS_CREDENTIAL_VARS = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SERVICE_ACCOUNT", "GOOGLE_SERVICE_ACCOUNT_PATH",
                        "GOOGLE_SERVICE_ACCOUNT_KEY", "STORAGE_EMULATOR_HOST")
# Google's client libraries tell a Compute Engine (or GKE) machine by this file before asking its metadata server
_GCE_PRODUCT_FILE = "/sys/class/dmi/id/product_name"


def _gcs_credentials_known() -> bool:
    """Whether GCS credentials may exist: a ``GOOGLE_*`` credential variable, gcloud's application default
    credentials file, or a machine that may be on Google Cloud (its DMI product name says Google, or there is
    none to read, as in some sandboxes: then the metadata server is asked, within the preflight's limits)."""
    env = os.environ
    if any(env.get(v) for v in _GCS_CREDENTIAL_VARS):
        return True
    config = env.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    if os.path.isfile(os.path.join(config, "application_default_credentials.json")):
        return True
    try:
        with open(_GCE_PRODUCT_FILE) as fh:
            return fh.read().strip().startswith("Google")
    except OSError:
        return True


def _gcs_options(env) -> dict[str, str]:
    """GCS: object_store reads ``GOOGLE_*`` itself (service account file or key, application default
    credentials). ``STORAGE_EMULATOR_HOST``, the variable Google's client libraries honour for an emulator,
    becomes the crate's form of it: a credential naming that base URL with OAuth turned off."""
    host = env.get("STORAGE_EMULATOR_HOST", "").strip().rstrip("/")
    if not host:
        return {}
    if "://" not in host:
        host = "http://" + host
    key = {"gcs_base_url": host, "disable_oauth": True, "client_email": "", "private_key": "", "private_key_id": ""}
    opts = {"google_service_account_key": json.dumps(key)}
    if host.startswith("http://"):
        opts["allow_http"] = "true"
    return opts


def _connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` pairs of an Azure storage connection string (values may hold ``=``)."""
    out = {}
    for part in text.split(";"):
        k, sep, v = part.partition("=")
        if sep and k.strip():
            out[k.strip()] = v.strip()
    return out


def _azure_options(env) -> dict[str, str]:
    """Azure: ``AZURE_STORAGE_CONNECTION_STRING`` (what the Azure CLI and SDKs read; ``UseDevelopmentStorage=true``
    or a ``BlobEndpoint`` for Azurite), then the account, key, SAS token and endpoint variables, the names the
    Azure CLI uses included. Service principals, workload identity and managed identity stay with object_store,
    which reads ``AZURE_CLIENT_ID`` and friends itself. ``AZURE_STORAGE_USE_EMULATOR`` targets Azurite (at
    ``AZURITE_BLOB_STORAGE_URL``, default ``http://127.0.0.1:10000``)."""
    cs = _connection_string(env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    opts: dict[str, str] = {}
    emulator = cs.get("UseDevelopmentStorage", "").lower() == "true" or \
        env.get("AZURE_STORAGE_USE_EMULATOR", "").lower() in ("1", "true", "yes")
    account = (env.get("AZURE_STORAGE_ACCOUNT_NAME") or env.get("AZURE_STORAGE_ACCOUNT") or cs.get("AccountName")
               or (AZURITE_ACCOUNT if emulator else None))
    key = env.get("AZURE_STORAGE_ACCOUNT_KEY") or env.get("AZURE_STORAGE_KEY") or cs.get("AccountKey") or \
        (AZURITE_KEY if emulator and account == AZURITE_ACCOUNT else None)
    sas = env.get("AZURE_STORAGE_SAS_TOKEN") or cs.get("SharedAccessSignature")
    endpoint = env.get("AZURE_STORAGE_ENDPOINT") or cs.get("BlobEndpoint")
    if not endpoint and account and cs.get("EndpointSuffix"):  # a sovereign cloud (core.chinacloudapi.cn, ...)
        endpoint = f"{cs.get('DefaultEndpointsProtocol', 'https')}://{account}.blob.{cs['EndpointSuffix']}"
    if account:
        opts["azure_storage_account_name"] = account
    if key:
        opts["azure_storage_account_key"] = key
    elif sas:
        opts["azure_storage_sas_key"] = sas.lstrip("?")
    if endpoint:
        opts["azure_storage_endpoint"] = endpoint.rstrip("/")
    elif emulator:
        opts["azure_storage_use_emulator"] = "true"
    if (endpoint or "").startswith("http://") or emulator:
        opts["allow_http"] = "true"
    return opts


def credentials_problem(loc: Location, opts: dict[str, str]) -> str | None:
    """Why ``loc`` has no usable credentials, or None. For S3, no key; for Azure, no storage account (every
    way of signing in needs one); for GCS, no credential variable, no gcloud application default credentials
    and a machine that is not on Google Cloud (where the metadata server would answer)."""
    if loc.family == "s3" and not opts.get("aws_access_key_id") and not os.environ.get("AWS_SKIP_SIGNATURE"):
        return (f"no AWS credentials for {loc.url}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE "
                "(or run on a machine with an instance role)")
    if loc.family == "az" and not opts.get("azure_storage_account_name") and "@" not in loc.bucket:
        return (f"no Azure storage account for {loc.url}: set AZURE_STORAGE_CONNECTION_STRING, or "
                "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_TOKEN or an Azure "
                "identity (AZURE_CLIENT_ID, ...)")
    if loc.family == "gs" and not opts and not _gcs_credentials_known():
        return (f"no Google Cloud credentials for {loc.url}: set GOOGLE_APPLICATION_CREDENTIALS to a service account "
                "key file, or run `gcloud auth application-default login` (STORAGE_EMULATOR_HOST for an emulator)")
    return None


def connect(loc: Location, opts: dict[str, str] | None = None, *, preflight_limits: bool = True) -> Any:
    """An obstore client for ``loc`` (its prefix applied). ``preflight_limits`` caps timeouts and turns off
    retries, for checks that must fail fast."""
    try:
        import obstore.store
    except ImportError:
        raise ObjectStoreError(CLOUD_EXTRA_HINT) from None
    opts = storage_options(loc) if opts is None else opts
    client: dict[str, Any] = {}
    retry: dict[str, Any] | None = None
    if preflight_limits:
        client = {"connect_timeout": PREFLIGHT_CONNECT_TIMEOUT, "timeout": PREFLIGHT_TIMEOUT}
        retry = {"max_retries": 0, "retry_timeout": dt.timedelta(seconds=10)}
    config = dict(opts)
    # delta-rs takes allow_http among the storage options; obstore takes it as a client option
    if "true" in (config.pop("aws_allow_http", None), config.pop("allow_http", None)):
        client["allow_http"] = True
    if loc.family == "file":
        return obstore.store.LocalStore(loc.local_path, mkdir=True)
    try:
        return obstore.store.from_url(loc.url, config=config or None, client_options=client or None,
                                      retry_config=retry)
    except Exception as e:
        raise ObjectStoreError(f"cannot use {loc.url}: {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(e).__name__


def explain(loc: Location, e: BaseException) -> str:
    """One line for an object-storage failure at ``loc``: the kind of failure, then the library's own words."""
    text = str(e)
    low = text.lower()
    if "nosuchbucket" in low or "containernotfound" in low or (_status(low, "404") and "bucket" in low):
        kind = f"{'container' if loc.family == 'az' else 'bucket'} {loc.bucket!r} does not exist"
    elif "error sending request" in low or "connection refused" in low or "dns error" in low:
        # no answer came: whatever else the message holds (a port or a duration may contain 401) is no status
        kind = "endpoint unreachable"
    elif "token request" in low:  # no credential could be obtained (GCS: the metadata server refused or is absent)
        kind = "credentials unavailable"
    elif ("authenticationfailed" in low or "invalidauthenticationinfo" in low  # Azure: a wrong key or SAS (a 403)
          or "failed to authenticate" in low):
        kind = "credentials rejected"
    elif "accessdenied" in low or _status(low, "403") or "forbidden" in low or "permission" in low:
        kind = "access denied"
    elif ("invalidaccesskeyid" in low or "signaturedoesnotmatch" in low or _status(low, "401")
          or "unauthenticated" in low or "expiredtoken" in low):
        kind = "credentials rejected"
    elif "timed out" in low or "timeout" in low or "connect" in low:
        kind = "endpoint unreachable"
    else:
        kind = "request failed"
    return f"{loc.url}: {kind} ({_service_error(text) or _first_line(e)})"


_STATUS = re.compile(r"status code: (\d{3}[^:<]*)")


def _status(low: str, code: str) -> bool:
    """Whether ``low`` (an error message, lower-cased) carries the HTTP status ``code`` as a number of its own,
    not as digits inside a port, a duration or an id."""
    return re.search(rf"(?<![\d.:]){code}(?![\d.])", low) is not None
_CODE = re.compile(r"<Code>([^<]+)</Code>")
_MESSAGE = re.compile(r"<Message>([^<\n]+)")


def _service_error(text: str) -> str | None:
    """The service's own words from an XML error body (S3, GCS and Azure all answer ``<Error><Code>..``), with
    the HTTP status: more telling than the request line the library's message starts with."""
    code = _CODE.search(text)
    if not code:
        return None
    status = _STATUS.search(text)
    message = _MESSAGE.search(text)
    parts = [f"HTTP {status.group(1).strip()}" if status else None, code.group(1).strip(),
             message.group(1).strip() if message else None]
    return ": ".join(p for p in parts if p)[:300]


def preflight(loc: Location, write: bool, opts: dict[str, str] | None = None) -> dict[str, str]:
    """Check ``loc`` is reachable, authorised and (``write``) writable; returns its storage options.

    One listing request and, for ``write``, one small put and delete under ``_tracelens_probe/``: the only
    way to learn a bucket policy allows writes is to write. Raises ``ObjectStoreError`` (one line).
    """
    opts = storage_options(loc) if opts is None else opts
    if loc.family == "file":
        return opts
    problem = credentials_problem(loc, opts)
    if problem:
        raise ObjectStoreError(problem)
    import obstore

    client = connect(loc, opts)
    try:
        next(iter(obstore.list(client, None, chunk_size=1)), None)
    except Exception as e:
        raise ObjectStoreError(explain(loc, e)) from None
    if write:
        probe = f"_tracelens_probe/{uuid.uuid4().hex}"
        try:
            obstore.put(client, probe, b"")
        except Exception as e:
            raise ObjectStoreError(explain(loc, e).replace("access denied", "no write permission", 1)) from None
        # a probe left behind (delete denied while put is allowed) is harmless: an empty object
        with contextlib.suppress(Exception):
            obstore.delete(client, probe)
    return opts
