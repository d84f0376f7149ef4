"""Object-storage locations: URL parsing, the credential chain, and the preflight's one-line failures."""

from __future__ import annotations

import time

import pytest

from tracelens import objstore
from tracelens.objstore import ObjectStoreError


@pytest.mark.parametrize(
    ("url", "family", "bucket", "prefix"),
    [
        ("s3://bkt/some/prefix/", "s3", "bkt", "some/prefix"),
        ("s3a://bkt", "s3", "bkt", ""),
        ("gs://b/p", "gs", "b", "p"),
        ("az://container/p/q", "az", "container", "p/q"),
        ("abfss://container/p", "az", "container", "p"),
        ("file:///tmp/x/../store/", "file", "", "tmp/store"),
    ],
)
def test_parse(url, family, bucket, prefix):
    loc = objstore.parse(url)
    assert (loc.family, loc.bucket, loc.prefix) == (family, bucket, prefix)
    assert objstore.is_url(url)


@pytest.mark.parametrize("url", ["http://host/x", "s3:///nobucket", "file://relative/x", "s3://b/a/../c", "ftp://x/y"])
def test_parse_rejects(url):
    with pytest.raises(ObjectStoreError) as e:
        objstore.parse(url)
    assert "\n" not in str(e.value)


def test_local_paths_are_not_urls():
    assert not objstore.is_url("/tmp/store")
    assert not objstore.is_url("store")
    assert not objstore.is_url("C:/x")


def test_env_credentials_and_endpoint(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    opts = objstore.storage_options(objstore.parse("s3://b/p"))
    assert opts["aws_access_key_id"] == "k" and opts["aws_secret_access_key"] == "s"
    assert opts["aws_endpoint"] == "http://127.0.0.1:9" and opts["aws_allow_http"] == "true"


def test_profile_chain(monkeypatch, tmp_path):
    """Credentials from a named profile in the shared credentials file, as the AWS CLI and SDKs read them."""
    creds = tmp_path / "credentials"
    creds.write_text("[team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = sekrit\n")
    config = tmp_path / "config"
    config.write_text("[profile team]\nregion = eu-west-3\n")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_PROFILE", "team")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    opts = objstore.storage_options(objstore.parse("s3://b/p"))
    assert opts["aws_access_key_id"] == "AKIDPROFILE"
    assert opts["aws_region"] == "eu-west-3"


def test_missing_credentials_fail_fast(monkeypatch, tmp_path):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    start = time.monotonic()
    with pytest.raises(ObjectStoreError, match="no AWS credentials") as e:
        objstore.preflight(objstore.parse("s3://bkt/p"), write=True)
    assert time.monotonic() - start < 5
    assert "\n" not in str(e.value)


def test_unreachable_endpoint_fails_fast(s3_env, monkeypatch):
    from tests.s3server import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    with pytest.raises(ObjectStoreError, match="endpoint unreachable") as e:
        objstore.preflight(objstore.parse("s3://bkt/p"), write=False)
    assert time.monotonic() - start < 5
    assert "\n" not in str(e.value)


def test_missing_bucket(s3_env):
    with pytest.raises(ObjectStoreError, match="does not exist"):
        objstore.preflight(objstore.parse("s3://no-such-bucket-here/p"), write=False)


def test_preflight_writes_and_cleans_up(s3_env):
    bucket = s3_env.bucket()
    objstore.preflight(objstore.parse(f"s3://{bucket}/store"), write=True)
    listed = s3_env.client().list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0  # the probe object is deleted again


def test_denied_write_is_one_line(monkeypatch):
    """A user whose policy denies PutObject (moto enforcing IAM): reading passes, the write probe fails in one line."""
    from tests.s3server import S3Server

    with S3Server.denying("s3:PutObject", "readonly") as (_, env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        loc = objstore.parse("s3://readonly/store")
        objstore.preflight(loc, write=False)  # reading is allowed
        with pytest.raises(ObjectStoreError, match="no write permission") as e:
            objstore.preflight(loc, write=True)
        assert "\n" not in str(e.value)


def test_an_unanswered_request_is_unreachable_whatever_digits_its_port_or_duration_hold():
    from tracelens.objstore import explain, parse

    dead = Exception("Generic MicrosoftAzure error: Error performing list request: http://127.0.0.1:40123/acct "
                     "in 403.2µs - HTTP error: error sending request")
    assert ": endpoint unreachable (" in explain(parse("az://c/p"), dead)
    denied = Exception("Generic S3 error: Client error with status 403 Forbidden: <Error><Code>AccessDenied</Code>"
                       "</Error>")
    assert ": access denied (" in explain(parse("s3://b/p"), denied)
    assert ": credentials rejected (" in explain(parse("s3://b/p"), Exception("status code: 401 Unauthorized"))
