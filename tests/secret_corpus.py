"""A generated corpus of secret shapes and of ordinary text that looks a little like them.

Every value is assembled at run time from a seeded generator, so no
key-shaped literal sits in the repository (secret scanners would flag it)
and every run uses the same values. ``SHAPES`` pairs each secret with the
context it appears in inside a log (a sentence, a header line, a JSON field,
a URL); ``ORDINARY`` is text the scrubber must leave exactly as it is.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "_-"
B64 = ALNUM + "+/"


@dataclass(frozen=True)
class Shape:
    label: str
    value: str  # the secret: must appear nowhere after scrubbing
    context: str  # how a log carries it

    def leaks(self, text: str) -> list[str]:
        """The pieces of the secret found in ``text`` (whole value, JSON-escaped value, or a distinctive chunk)."""
        found = []
        escaped = json.dumps(self.value)[1:-1]
        for needle in {self.value, escaped, *self.chunks()}:
            if needle and needle in text:
                found.append(needle)
        return found

    def chunks(self) -> list[str]:
        # a distinctive middle part: a secret cut in two (one half kept) is still a leak
        if len(self.value) < 24:
            return []
        body = self.value.replace("\n", "")
        m = len(body) // 2
        return [body[m - 8 : m + 8]]


def _r(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        # generated keys mix classes; make sure every value does (the shape rules rely on it)
        if any(c.isdigit() for c in s) and any(c.isupper() for c in s) and any(c.islower() for c in s):
            return s


def _b64url(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def shapes(seed: int = 20261207) -> list[Shape]:
    rng = random.Random(seed)
    r = lambda n, a=ALNUM: _r(rng, n, a)  # noqa: E731
    akia = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    asia = "ASIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    aws_secret = r(40, B64)
    aws_secret2 = r(40, B64)
    pem_body = "\n".join(r(64, B64) for _ in range(6))
    rsa = f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----"
    ossh_body = "\n".join(r(70, B64) for _ in range(4))
    openssh = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{ossh_body}\n-----END OPENSSH PRIVATE KEY-----"
    jwt = f"{_b64url({'alg': 'HS256', 'typ': 'JWT'})}.{_b64url({'sub': r(12), 'iat': 1790000000})}.{r(43, URLSAFE)}"
    basic_pw = r(18)
    basic = base64.b64encode(f"svc-user:{basic_pw}".encode()).decode()
    url_pw, sas_sig, amz_sig = r(20), r(44, B64), "".join(rng.choice("0123456789abcdef") for _ in range(64))
    bearer, xkey, client_secret, cookie, env_pw = r(48, URLSAFE + "."), r(32), r(40, URLSAFE), r(32), r(20)
    har, pair, access, refresh, session_tok = r(36), r(30), r(40), r(48), r(120, B64)
    repr_key, mapkey, meta_key, pw_field = r(28), r(32), r(26), r(16) + "!"
    words_pw = "correct horse battery staple " + r(4)
    out = [
        Shape("anthropic api key", v := "sk-ant-api03-" + r(93, URLSAFE) + "AA", f"my key is {v}, can you check it?"),
        Shape("anthropic admin key", v := "sk-ant-admin01-" + r(93, URLSAFE) + "AA", f"admin key {v}"),
        Shape("openai legacy key", v := "sk-" + r(20) + "T3BlbkFJ" + r(20), f"OPENAI_API_KEY={v}"),
        Shape("openai project key", v := "sk-proj-" + r(120, URLSAFE), f"export OPENAI_API_KEY='{v}'"),
        Shape("openai service-account key", v := "sk-svcacct-" + r(64, URLSAFE), f"key: {v}"),
        Shape("aws access key id", akia, f"the CI user is {akia} in us-east-1"),
        Shape("aws temporary key id", asia, f"assumed role gave {asia}"),
        Shape("aws secret next to its key id", aws_secret, f"creds {akia} {aws_secret} expire tonight"),
        Shape("aws secret under its name", aws_secret2, f"aws_secret_access_key = {aws_secret2}"),
        Shape("aws session token", session_tok, f'{{"aws_session_token": "{session_tok}"}}'),
        Shape("google api key", v := "AIza" + r(35, URLSAFE), f"maps key {v}"),
        Shape("google oauth token", v := "ya29." + r(120, URLSAFE), f"token was {v} before refresh"),
        Shape("github classic token", v := "ghp_" + r(36), f"git clone https://{v}@github.com/acme/app"),
        Shape("github oauth token", v := "gho_" + r(36), f"GH token {v}"),
        Shape("github app token", v := "ghs_" + r(36), f"installation token {v}"),
        Shape("github fine-grained token", v := "github_pat_" + r(22) + "_" + r(59), f"PAT {v}"),
        Shape("gitlab token", v := "glpat-" + r(20, URLSAFE), f"gitlab {v}"),
        Shape("slack bot token", v := f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{r(24)}",
              f"slack {v}"),
        Shape("slack user token", v := f"xoxp-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**11, 10**12)}-{r(32)}",
              f"user token {v}"),
        Shape("slack webhook", v := f"https://hooks.slack.com/services/T{r(10)}/B{r(10)}/{r(24)}", f"post to {v}"),
        Shape("stripe live secret key", v := "sk_live_" + r(24), f"stripe {v}"),
        Shape("stripe restricted key", v := "rk_live_" + r(24), f"restricted {v}"),
        Shape("stripe test key", v := "sk_test_" + r(24), f"test mode {v}"),
        Shape("stripe webhook secret", v := "whsec_" + r(32), f"webhook signing {v}"),
        Shape("hugging face token", v := "hf_" + r(34), f"HF {v}"),
        Shape("npm token", v := "npm_" + r(36), f"//registry.npmjs.org/:_authToken={v}"),
        Shape("sendgrid key", v := f"SG.{r(22, URLSAFE)}.{r(43, URLSAFE)}", f"mail via {v}"),
        Shape("jwt", jwt, f"session {jwt} (decoded fine)"),
        Shape("rsa private key", rsa, f"here is the key:\n{rsa}\nplease rotate"),
        Shape("openssh private key", openssh, openssh),
        Shape("bearer token header", bearer, f"Authorization: Bearer {bearer}"),
        Shape("basic auth header", basic, f"curl -H 'Authorization: Basic {basic}' https://api.example.com"),
        Shape("url password", url_pw, f"DATABASE_URL is postgres://app:{url_pw}@db.internal:5432/prod"),
        Shape("url key parameter", mapkey, f"GET https://maps.example.com/api/geocode?key={mapkey}&q=paris"),
        Shape("azure sas signature", sas_sig,
              f"https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2026-12-31&sp=r&sig={sas_sig}"),
        Shape("s3 presigned signature", amz_sig,
              f"https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=60&X-Amz-Signature={amz_sig}"),
        Shape("access_token parameter", access, f"https://api.example.com/cb?access_token={access}&state=xyz"),
        Shape("password field", pw_field, json.dumps({"username": "bob", "password": pw_field})),
        Shape("password of plain words", words_pw, json.dumps({"user": "ann", "password": words_pw})),
        Shape("client_secret field", client_secret, json.dumps({"client_id": "app-7", "client_secret": client_secret})),
        Shape("refresh_token field", refresh, json.dumps({"refresh_token": refresh, "expires_in": 3600})),
        Shape("x-api-key header", xkey, f"POST /v1/messages\nx-api-key: {xkey}\ncontent-type: application/json"),
        Shape("api_key in a python repr", repr_key, repr({"api_key": repr_key, "model": "claude-haiku-4-5"})),
        Shape("apiKey in camel case", meta_key, json.dumps({"config": {"apiKey": meta_key, "region": "eu"}})),
        Shape("cookie header", cookie, f"Cookie: session={cookie}; theme=dark"),
        Shape("password assignment", env_pw, f"DB_PASSWORD={env_pw} ./run.sh"),
        Shape("header name/value pair", har, json.dumps([{"name": "X-Api-Key", "value": har}, {"name": "Accept", "value": "*/*"}])),
        Shape("header pair list", pair, json.dumps([["authorization", f"Token {pair}"], ["accept", "json"]])),
    ]
    labels = [s.label for s in out]
    assert len(set(labels)) == len(labels)
    return out


def ordinary(seed: int = 7) -> list[str]:
    """Text that must come out of the scrubber unchanged."""
    rng = random.Random(seed)
    digest = hashlib.sha256(b"prompt").hexdigest()
    image = base64.b64encode(bytes(rng.randrange(256) for _ in range(3000))).decode()
    thinking = json.dumps({"type": "thinking", "thinking": "Let me check the order.",
                           "signature": "EqQBCkYIBxgCKkA" + _r(rng, 200, B64)})
    return [
        "Order #4411-20260315-0042 shipped on 2026-03-15 for $1,234.56.",
        f"order 10023491, invoice INV-2026-000123, ref {uuid.UUID(int=rng.getrandbits(128))}",
        f"content hash {digest} and prompt hash {digest[:16]}",
        "msg_01XFDUDYJgAACzvnptvVoYEL toolu_01A09q90qw90lq917835lq9 req_011CSHoEeqs5C35K2UUqR7Fy",
        "claude-sonnet-4-5-20250929 via us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "The token count was 1,234 tokens; the max_tokens limit is 4096.",
        json.dumps({"max_tokens": 1024, "usage": {"input_tokens": 5, "output_tokens": 9, "cache_read_input_tokens": 3}}),
        "Token: the smallest unit of text a model reads.",
        "The key point: refunds take 5-7 days. Keyboard shortcut: ctrl+k.",
        "Password reset instructions were sent to your email.",
        "Authentication failed: please sign in again. Authorization is required.",
        "Basic information about your order, and Bearer of good news.",
        json.dumps({"token": "Hello", "logprob": -0.12, "top_logprobs": [{"token": " world", "logprob": -1.5}]}),
        thinking,
        json.dumps({"name": "login", "input_schema": {"type": "object", "properties": {
            "password": {"type": "string", "description": "the user's password"},
            "api_key": {"type": "string"}}, "required": ["password"]}}),
        json.dumps({"next_token": "eyJwYWdlIjogMn0", "time_to_first_token_ms": 412, "user_api_key_user_id": "u-ops",
                    "user_api_key_hash": digest, "password_reset_required": False, "api_key": None, "token": ""}),
        "See https://docs.example.com/guide?page=2&q=refund#returns for details.",
        f'{{"type": "image", "source": {{"type": "base64", "media_type": "image/png", "data": "{image}"}}}}',
        "-----\nA horizontal rule above; a markdown table below\n| key | value |\n|---|---|",
        "Call +1 (415) 555-0133 or write to support@example.com.",
        "ASIA is a continent; AKIA is not a word; sk- prefixes belong to keys.",
        "time=2026-11-18T15:00:00Z level=info msg=done latency_ms=512 status=200",
        "SELECT * FROM orders WHERE id = 42 AND secret_santa IS NULL",
    ]
