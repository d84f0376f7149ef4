"""Secrets are never kept: the always-on scrubber.

Logs carry credentials by accident: an ``x-api-key`` header in an HTTP
recording, a key pasted into a prompt, ``metadata.api_key`` in a request, an
AWS key pair in a tool call. Everything tracelens stores or prints goes
through this module first, whatever the format and whether or not
``--redact`` was given:

* ``scrub_text(text)`` replaces every secret found in a string with a marker
  naming what was removed, e.g. ``[secret:anthropic-key]``.
* ``scrub_value(value)`` does the same over nested dicts and lists (records,
  parsed JSON), and also replaces the value of every key-ish field
  (``api_key``, ``authorization``, ``password``, ``client_secret``,
  ``access_token``, ...) whatever it looks like. Name/value pairs
  (``{"name": "x-api-key", "value": ...}``, ``["authorization", ...]``) count
  as fields too.
* ``is_secret_name(name)`` is the field-name rule on its own.

What is recognised (``KINDS`` lists the markers):

1. Known key formats, anywhere in text: Anthropic (``sk-ant-``), OpenAI
   (``sk-``, ``sk-proj-``, ``sk-svcacct-``, ``sk-admin-``), AWS access key ids
   (``AKIA``/``ASIA``/...), Google API keys (``AIza``) and OAuth tokens
   (``ya29.``), GitHub (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``,
   ``github_pat_``), GitLab (``glpat-``), Slack tokens (``xox[abposr]-``) and
   webhook URLs, Stripe secret and restricted keys (``sk_live_``,
   ``rk_live_``, ``*_test_``, ``whsec_``), Hugging Face (``hf_``), npm
   (``npm_``), SendGrid (``SG.``), JWTs (``eyJ….eyJ….sig``) and PEM private-key
   blocks (also when their newlines are JSON-escaped, or the block is cut).
2. AWS secret access keys: a 40-character base64 token with upper case,
   lower case and digits, in a text that also holds an AWS access key id
   (secrets under a key-ish name are caught by rule 4 whatever their shape).
3. Authorization values: ``Bearer``/``Token`` credentials of 16+ characters
   with a digit or mixed case, ``Basic`` credentials that decode to
   ``user:password``; URL user-info passwords (``https://u:pw@host``) and URL
   query parameters named like a credential (``?key=``, ``api_key=``,
   ``token=``, ``sig=``, ``X-Amz-Signature=``, ...).
4. Key-ish names followed by a value: JSON (``"api_key": "…"``, also one
   level of escaped JSON inside a JSON string), Python reprs, ``NAME=value``
   assignments, header and YAML lines (``x-api-key: …`` at the start of a
   line). In running prose (``the password: …`` mid-sentence) only a value
   that looks generated (8+ characters with a digit, or mixed case and a
   symbol) is taken, so that "Token: the unit a model reads" survives.

Guarantees: the result of scrubbing JSON text is still valid JSON (markers
hold no quote or backslash, numbers under key-ish names become quoted
markers), scrubbing is idempotent, and text without a secret is returned
unchanged (the same object). What is deliberately *not* touched: content
hashes, UUIDs, dates, order ids, ordinary words ("token count", "max_tokens",
"the key point"), OpenAI logprob entries (``{"token": …, "logprob": …}``),
pagination tokens (``next_token``) and Anthropic thinking ``signature``
fields (needed to replay a conversation; they are not credentials).

Cost: a prefilter decides which passes run at all. Separators are looked
for with one-character ``in`` tests (memchr); known formats only when a
translated copy of the text holds a run of 16+ token characters carrying a
format's prefix; name rules only when a literal-prefixed search finds a word
that can end a key-ish name (``key``, ``token``, ``secret``, ``pass``, ...).
Results for recent texts are cached (logs repeat system prompts and ids).
About 30 us of CPU per ~1.2 KB record on the ingest benchmark.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Any

# Every marker this module writes, for docs and tests.
KINDS = (
    "anthropic-key", "openai-key", "aws-access-key-id", "aws-secret-key", "google-api-key", "google-oauth-token",
    "github-token", "gitlab-token", "slack-token", "slack-webhook", "stripe-key", "huggingface-token", "npm-token",
    "sendgrid-key", "jwt", "private-key", "bearer-token", "basic-auth", "url-password", "url-param",
    "api-key", "password", "token", "secret", "authorization", "cookie", "credential",
)


def _marker(kind: str) -> str:
    return f"[secret:{kind}]"


# ---------------------------------------------------------------- field names

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NAME_RULES: tuple[tuple[str, re.Pattern], ...] = (
    ("password", re.compile(r"passw(?:or)?d|passphrase|^(?:pwd|pass)$")),
    ("secret", re.compile(r"secret")),
    ("authorization", re.compile(r"(?:^|_)(?:authorization|o?auth)$")),
    ("api-key", re.compile(
        r"api_?key$|(?:^|_)(?:access|secret|private|signing|encryption|master|account|client|auth|license|session"
        r"|subscription|admin|app|sas|storage|hmac|webhook)_?key$"
    )),
    # "token" alone or after a credential word; not max_tokens, next_token or time_to_first_token
    ("token", re.compile(
        r"^token$|(?:^|_)(?:access|refresh|id|auth|api|bearer|session|security|oauth|personal_access|bot|app"
        r"|client|user|private|github|gh|slack|hf|npm|gitlab|csrf|xsrf)_?token$|(?:^|_)(?:jwt|bearer)$"
    )),
    ("cookie", re.compile(r"(?:^|_)(?:set_)?cookies?$")),
    ("credential", re.compile(r"(?:^|_)(?:credentials?|creds)$|(?:^|_)amz_(?:signature|credential)$")),
)
# Names that match a rule above but name something that is not a credential.
_NOT_SECRET_NAMES = frozenset({"scrubbed", "redactions", "secret_name", "secrets_scrubbed"})
_name_cache: dict[str, str | None] = {}


def _normal_name(name: str) -> str:
    return _NON_ALNUM.sub("_", _CAMEL.sub("_", name).lower()).strip("_")


def secret_name_kind(name: str) -> str | None:
    """The marker kind for a field named ``name`` whose value is always a secret, else None."""
    hit = _name_cache.get(name, False)
    if hit is not False:
        return hit  # type: ignore[return-value]
    n = _normal_name(name)
    kind = None
    if n and n not in _NOT_SECRET_NAMES and len(n) <= 80:
        for k, rx in _NAME_RULES:
            if rx.search(n):
                kind = k
                break
    if len(_name_cache) < 4096:  # names come from a small vocabulary; the cap bounds hostile input
        _name_cache[name] = kind
    return kind


def is_secret_name(name: str) -> bool:
    """Whether a field, header or parameter named ``name`` holds a credential (its value is always removed)."""
    return secret_name_kind(name) is not None


# ---------------------------------------------------------------- patterns

# A token must not be glued to a word character on its left (``task-...`` is no OpenAI key), but an escape
# of our own or of a JSON encoder right before it is a boundary: undecodable bytes are kept as ``\xNN`` and
# ASCII-only JSON writes ``\u00e9``, so the original text had a non-word character there.
_ESCAPED_LEFT = r"(?<=\\[xX][0-9a-fA-F]{2})|(?<=\\u[0-9a-fA-F]{4})|"


def _boundary(pattern: str) -> str:
    """``pattern`` with each ``(?<![...])`` left boundary also accepting an escape right before the token."""
    return re.sub(r"\(\?<!\[([^\]]*)\]\)", lambda m: f"(?:{_ESCAPED_LEFT}(?<![{m.group(1)}]))", pattern)


# Known formats: (kind, pattern). Order matters only where prefixes overlap (sk-ant- before sk-).
_FORMATS: tuple[tuple[str, re.Pattern], ...] = (
    ("private-key", re.compile(
        r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|(?:(?:\\[nrt]|\s)+[A-Za-z0-9+/=]{16,})*)",
        re.S,
    )),
    ("anthropic-key", re.compile(_boundary(r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{16,}"))),
    ("openai-key", re.compile(_boundary(r"(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,}"))),
    ("aws-access-key-id", re.compile(_boundary(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"))),
    ("google-api-key", re.compile(_boundary(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}"))),
    ("google-oauth-token", re.compile(_boundary(r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}"))),
    ("github-token", re.compile(_boundary(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"))),
    ("gitlab-token", re.compile(_boundary(r"(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,}"))),
    ("slack-webhook", re.compile(r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}")),
    ("slack-token", re.compile(_boundary(r"(?<![A-Za-z0-9_-])xox[abposr]-[A-Za-z0-9-]{10,}"))),
    ("stripe-key", re.compile(_boundary(r"(?<![A-Za-z0-9_])(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|(?<![A-Za-z0-9_])whsec_[A-Za-z0-9]{20,}"))),
    ("huggingface-token", re.compile(_boundary(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}"))),
    ("npm-token", re.compile(_boundary(r"(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}"))),
    ("sendgrid-key", re.compile(_boundary(r"(?<![A-Za-z0-9_.-])SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"))),
    ("jwt", re.compile(_boundary(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"))),
)
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AUTH_SCHEME = re.compile(r"(?<![A-Za-z0-9_-])(?P<scheme>[Bb]earer|BEARER|[Bb]asic|BASIC)[ \t]+(?P<value>[A-Za-z0-9._~+/-]{8,}=*)")
_URL_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s/@:\"'<>\\]{1,256}:)(?P<pw>[^\s/@\"'<>\\]{1,256})(?=@)")
_URL_PARAM = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.\-\[\]]{1,64})=)(?P<value>[^&#\s\"'<>\\]+)")
_QUERY_NAMES = frozenset({"key", "sig", "signature", "code_verifier", "x_amz_signature", "x_amz_security_token",
                          "x_amz_credential", "x_goog_signature", "x_goog_credential", "sv_sig", "auth", "pass"})
# What may follow a key-ish name that sits in a JSON string ("name" is the text between the quotes),
# for JSON text and for JSON text escaped inside JSON strings, ``depth`` times (quotes written \" or \\\").
_JSON_AFTER: dict[int, tuple[re.Pattern, re.Pattern]] = {}


def _json_after(depth: int) -> tuple[re.Pattern, re.Pattern]:
    """(what follows the name, what precedes a name that is the value of a "name" field) at ``depth``."""
    got = _JSON_AFTER.get(depth)
    if got is None:
        q = re.escape("\\" * depth + '"')
        # depth 0: a JSON string; deeper: anything up to the quote of that depth (inner quotes end it early)
        value = r'(?:[^"\\]|\\.)*' if depth == 0 else r'[^"]*?(?<!\\)'
        after = re.compile(
            rf'{q}\s*:\s*(?:{q}(?P<jval>{value}){q}|(?P<jnum>-?\d[\d.eE+-]*))'  # "api_key": "v" | "pin": 1234
            rf'|{q}\s*,\s*{q}value{q}\s*:\s*{q}(?P<nval>{value}){q}'  # {"name": "x-api-key", "value": "v"}
            rf'|{q}\s*,\s*{q}(?P<pval>{value}){q}(?=\s*\])',  # ["x-api-key", "v"]
            re.S,
        )
        named = re.compile(rf'{q}(?:name|key|header){q}\s*:\s*$')
        got = _JSON_AFTER[depth] = (after, named)
    return got


_PAIR_BEFORE = re.compile(r"\[\s*\\*$")
_LINE_END = re.compile(r"[ \t]*(?:$|[\r\n]|\\[rn])")
# What may follow any other key-ish name: escaped JSON, reprs, NAME=value, header and YAML lines, prose.
_AFTER_ANY = re.compile(
    r"(?P<sep>\\{0,3}[\"']?[ \t]{0,3}(?::|=>|=)[ \t]{0,3}\\{0,3}[\"']?)"
    r"(?P<scheme>(?:[Bb]earer|[Tt]oken|[Bb]asic)[ \t]+)?"
    r"(?P<val>[^\s\"'\\,;&<>(){}\[\]]{1,4096})"
)
_IDENT_RIGHT = re.compile(r"[A-Za-z0-9_.-]{0,80}")
_IDCHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_PLACEHOLDER = re.compile(
    r"(?i)(?:null|none|true|false|undefined|nil|\*+|x{3,}|\.{3}|<[a-z_ -]*>|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"
    r"|\[?(?:redacted|removed|masked|hidden|filtered)\]?|(?:\[secret:[a-z-]+\]\s*)+)"
)
_MARKER_ONLY = re.compile(r"(?:(?:[Bb]earer|[Tt]oken|[Bb]asic)\s+)?(?:\[secret:[a-z-]+\]\s*)+")
_SCHEMES = frozenset({"bearer", "token", "basic"})

# The prefilter. Every known-format secret is a run of 16+ "token" characters holding one of these
# (case-sensitive) needles; every key-ish name holds one of _NAME_WORDS (lower-cased text).
_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=."
_TOKEN_TABLE = str.maketrans({chr(c): ("x" if chr(c) in _TOKEN_CHARS else " ") for c in range(128)})
_LONG_RUN = "x" * 16
_NOT_X = re.compile("[^x]")
_NOT_X_B = re.compile(b"[^x]")
_FORMAT_HINT = re.compile(
    r"sk-|_live_|_test_|whsec_|AKIA|ASIA|AIza|ya29\.|gh[pousr]_|github_pat_|glpat-|xox[abposr]-|hooks\.slack|"
    r"hf_|npm_|SG\.|eyJ"
)
# The word a key-ish name holds, and what may follow it inside the name (the rules anchor most names
# at their end: "api_key", "access_token", not "max_tokens" or "keyboard"; "secret" and "password" may sit
# anywhere). Each pattern starts with a literal, which the regex engine finds with a fast substring search.
_END = r"(?![a-z0-9_.-])"
_NAME_WORDS: tuple[tuple[str, re.Pattern], ...] = tuple((w, re.compile(p)) for w, p in (
    ("key", "key" + _END), ("token", "token" + _END), ("secret", "secret"), ("pass", "pass(?:w|phrase|" + _END + ")"),
    ("auth", "auth(?:orization)?" + _END), ("cookie", "cookies?" + _END), ("cred", "cred(?:s|entials?)?" + _END),
    ("pwd", "pwd" + _END), ("jwt", "jwt" + _END), ("bearer", "bearer" + _END),
))
_AFTER_NAME_CHARS = frozenset("\"'\\:= \t")


def _looks_generated(v: str) -> bool:
    """A value that is not a word: 8+ characters with a digit, or with mixed case and a symbol."""
    if len(v) < 8:
        return False
    has_digit = any(c.isdigit() for c in v)
    if has_digit and any(c.isalpha() for c in v):
        return True
    return any(c.isupper() for c in v) and any(c.islower() for c in v) and any(not c.isalnum() for c in v)


def _basic_is_credential(value: str) -> bool:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in raw


def _keep_value(v: str) -> bool:
    """Values under a key-ish name that are not secrets: empty, placeholders, our own markers."""
    v = v.strip()
    return not v or bool(_PLACEHOLDER.fullmatch(v) or _MARKER_ONLY.fullmatch(v))


def _line_start(s: str, i: int) -> bool:
    """Whether position ``i`` starts a line (also after a JSON-escaped newline)."""
    j = i
    while j > 0 and s[j - 1] in " \t":
        j -= 1
    return j == 0 or s[j - 1] in "\n\r" or (j >= 2 and s[j - 2] == "\\" and s[j - 1] in "nr")


_FORMAT_HINT_B = re.compile(_FORMAT_HINT.pattern.encode())
_TOKEN_TABLE_B = bytes(ord("x") if chr(c) in _TOKEN_CHARS else ord(" ") for c in range(256))


def _format_candidate(s: str) -> bool:
    """Whether ``s`` holds a long token that one of the known-format patterns could match.

    Known-format secrets are runs of 16+ token characters; prose has few. The
    runs are found on a translated copy (token characters -> ``x``) with
    ``find``, which is far cheaper than a regex over the text.
    """
    if s.isascii():  # bytes.translate is twice as fast as str.translate; offsets agree for ASCII
        b = s.encode("ascii")
        t = b.translate(_TOKEN_TABLE_B)
        run, hint, src, not_x = b"x" * 16, _FORMAT_HINT_B, b, _NOT_X_B
    else:
        t = s.translate(_TOKEN_TABLE)
        run, hint, src, not_x = _LONG_RUN, _FORMAT_HINT, s, _NOT_X
    i = t.find(run)
    while i >= 0:
        m = not_x.search(t, i)
        j = m.start() if m else len(t)
        if hint.search(src, i, j):
            return True
        i = t.find(run, j)
    return False


class _Scan:
    """One pass over one text: the replacement callbacks, listing the kinds they remove."""

    __slots__ = ("kinds",)

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def hit(self, kind: str) -> str:
        """Note a removed secret of ``kind`` and return the marker that replaces it."""
        self.kinds.append(kind)
        return _marker(kind)

    def run(self, s: str, low: str, words: list[re.Pattern], pem: bool, url: bool, auth: bool, formats: bool) -> str:
        """Apply the passes the prefilter (``scrub_text``) selected."""
        orig = s
        if formats or pem:
            for kind, rx in _FORMATS:
                s = rx.sub(lambda m, kind=kind: self.hit(kind), s)
            if "[secret:aws-access-key-id]" in s:
                s = _AWS_SECRET.sub(self._aws_secret, s)
        if auth:
            s = _AUTH_SCHEME.sub(self._auth, s)
        if url:
            if "@" in s:
                s = _URL_USERINFO.sub(lambda m: m.group("head") + self.hit("url-password"), s)
            s = _URL_PARAM.sub(self._param, s)
        if words:
            s = self._names(s, low if s is orig and len(low) == len(s) else None, words)
        return s

    def _aws_secret(self, m: re.Match) -> str:
        v = m.group(0)
        if any(c.isupper() for c in v) and any(c.islower() for c in v) and any(c.isdigit() for c in v):
            return self.hit("aws-secret-key")
        return v

    def _auth(self, m: re.Match) -> str:
        scheme, v = m.group("scheme"), m.group("value")
        if scheme.lower() == "basic":
            if not _basic_is_credential(v):
                return m.group(0)
            return f"{scheme} {self.hit('basic-auth')}"
        if len(v) < 16 or not (any(c.isdigit() for c in v) or (any(c.isupper() for c in v) and any(c.islower() for c in v))):
            return m.group(0)
        return f"{scheme} {self.hit('bearer-token')}"

    def _param(self, m: re.Match) -> str:
        name = m.group("name")
        if (_normal_name(name) in _QUERY_NAMES or is_secret_name(name)) and not _keep_value(m.group("value")):
            return m.group("head") + self.hit("url-param")
        return m.group(0)

    def _names(self, s: str, low: str | None, words: list[re.Pattern]) -> str:
        """Replace the values that follow key-ish names (found from the words they contain)."""
        if low is None or len(low) != len(s):  # (earlier replacements, or a character whose lower case is longer)
            low = "".join(c if len(c.lower()) != 1 else c.lower() for c in s)
        hits = sorted(m.start() for rx in words for m in rx.finditer(low))
        out: list[str] = []
        done = 0  # s[:done] has been copied to out
        for i in hits:
            if i < done:
                continue
            b = _IDENT_RIGHT.match(s, i).end()
            if b < len(s) and s[b] not in _AFTER_NAME_CHARS:
                continue  # not followed by a separator or a quote: not a name/value pair
            a = i
            while a > 0 and i - a < 80 and s[a - 1] in _IDCHARS:
                a -= 1
            kind = secret_name_kind(s[a:b])
            if kind is None:
                continue
            span = self._value_span(s, a, b, kind)
            if span is None:
                continue
            vs, ve, quote_number = span
            out.append(s[done:vs])
            out.append(f'"{self.hit(kind)}"' if quote_number else self.hit(kind))
            done = ve
        if not out:
            return s
        out.append(s[done:])
        return "".join(out)

    def _value_span(self, s: str, a: int, b: int, kind: str) -> tuple[int, int, bool] | None:
        """Where the value after the name ``s[a:b]`` is: (start, end, is a bare JSON number), or None."""
        if a > 0 and s[a - 1] == '"':
            depth = 0
            while depth < 8 and a - 2 - depth >= 0 and s[a - 2 - depth] == "\\":
                depth += 1
            after, named = _json_after(depth)
            m = after.match(s, b)
            if m is not None:
                if m.group("jnum") is not None:
                    # a bare JSON number becomes a quoted marker; inside an escaped document quoting is not needed
                    return m.start("jnum"), m.end("jnum"), depth == 0
                g = "jval" if m.group("jval") is not None else "nval" if m.group("nval") is not None else "pval"
                if g == "nval" and not named.search(s, max(0, a - 60), a - 1 - depth):
                    return None
                if g == "pval" and not _PAIR_BEFORE.search(s, max(0, a - 12), a - 1 - depth):
                    return None
                if kind == "token" and "logprob" in s[m.end():m.end() + 80]:
                    return None  # an OpenAI logprob entry: the token is model output, not a credential
                if _keep_value(m.group(g)):
                    return None
                return m.start(g), m.end(g), False
        m = _AFTER_ANY.match(s, b)
        if m is None:
            return None
        value, sep = m.group("val"), m.group("sep")
        if _keep_value(value) or value.lower() in _SCHEMES:
            return None  # (a scheme word: the credential after it was already replaced)
        # a quoted name ('api_key': …, \"password\": …): the same quote closes it
        quoted = a > 0 and s[a - 1] in "\"'" and sep.lstrip("\\")[:1] == s[a - 1]
        # a header or YAML line ("x-api-key: v"), not prose that starts a line ("Token: the unit ...")
        header_line = _line_start(s, a) and _LINE_END.match(s, m.end()) is not None
        structural = quoted or "=" in sep or header_line
        if not structural and not _looks_generated(value):
            return None  # prose such as "Token: the unit a model reads"
        if kind == "token" and "logprob" in s[m.end():m.end() + 80]:
            return None
        return m.start("val"), m.end("val"), False


# Results for recent texts: logs repeat system prompts, tool definitions, model ids and app names in
# every record. Bounded by entries and by characters held; cleared when full.
_CACHE: dict[str, tuple[str, tuple[str, ...]]] = {}
_CACHE_MAX_ENTRIES = 4096
_CACHE_MAX_TEXT = 16384
_cache_chars = 0


def scrub_text(text: str, counts: Counter | None = None) -> str:
    """``text`` with every secret replaced by a ``[secret:KIND]`` marker; adds to ``counts`` per kind.

    Text without a secret is returned unchanged (the same object).
    """
    global _cache_chars
    n = len(text)
    if n < 8:  # shorter than any secret this module recognises
        return text
    cacheable = 24 <= n <= _CACHE_MAX_TEXT  # (shorter ones are mostly unique ids, cheap to scan anyway)
    hit = _CACHE.get(text) if cacheable else None
    if hit is None:
        out, kinds = _scrub(text, n)
        if cacheable:
            if len(_CACHE) >= _CACHE_MAX_ENTRIES or _cache_chars > 4_000_000:
                _CACHE.clear()
                _cache_chars = 0
            _CACHE[text] = (out, kinds)
            _cache_chars += n
    else:
        out, kinds = hit
    if kinds and counts is not None:
        counts.update(kinds)
    return out


_NONE: tuple[str, ...] = ()


def _plain_short(text: str, n: int) -> bool:
    """For a text of 8 to 63 characters: True when ``_scrub``'s prefilter would return it unchanged.

    The same tests, without the calls and the cache lookup of ``scrub_text``:
    records hold many short unique values (ids, names, enum values) that
    leave at the prefilter.
    """
    if ":" in text or "=" in text or '",' in text:
        return False  # a separator: the name rules may apply
    return n < 16 or (_FORMAT_HINT.search(text) is None and "-----BEGIN" not in text)


def _scrub(text: str, n: int) -> tuple[str, tuple[str, ...]]:
    # The prefilter, cheapest tests first: a one-character "in" is a memchr; the rest only run when they
    # can matter. Most text (prose, ids, model names) leaves here.
    seps = ":" in text or "=" in text or '",' in text or '", ' in text  # (the last two: ["authorization", "…"])
    if n < 16 and not seps:
        return text, _NONE  # too short for a known format, and no name/value pair
    pem = n > 40 and "-----BEGIN" in text
    formats = n >= 16 and (_FORMAT_HINT.search(text) is not None if n < 64 else _format_candidate(text))
    words: list[re.Pattern] = []
    low = ""
    auth = False
    if seps:
        low = text.lower()
        for w, rx in _NAME_WORDS:
            if w in low and rx.search(low):  # ("in" first: cheaper than a regex call on short text)
                words.append(rx)
                auth = auth or w == "bearer"
        auth = auth or "basic" in low
    url = seps and "://" in text
    if not (words or pem or url or auth or formats):
        return text, _NONE
    scan = _Scan()
    out = scan.run(text, low, words, pem, url, auth, formats)
    return out, tuple(scan.kinds)


def _kind_of(name: str) -> str | None:
    kind = _name_cache.get(name, False)
    return secret_name_kind(name) if kind is False else kind  # type: ignore[return-value]


def scrub_value(value: Any, counts: Counter | None = None, name: str | None = None) -> Any:
    """``value`` (str, dict, list, tuple or anything else) with secrets removed.

    Copy on write: a container in which nothing changed is returned as it is;
    one that changed is a new container (the input is never modified).

    ``name`` is the field the value sits under: under a key-ish name every
    non-empty string or number becomes a marker; dicts below it are still
    judged key by key (a JSON schema property named ``password`` is not a
    secret, its ``type`` is not either).
    """
    kind = _kind_of(name) if name else None
    t = type(value)
    if t is str:
        if kind is None and len(value) < 64 and (len(value) < 8 or _plain_short(value, len(value))):
            return value
        if kind is not None and not _keep_value(value):
            if counts is not None:
                counts[kind] += 1
            return _marker(kind)
        return scrub_text(value, counts)
    if t is dict:
        return _scrub_dict(value, counts)
    if t is list or t is tuple:
        if (len(value) == 2 and type(value[0]) is str and isinstance(value[1], str | int)
                and _kind_of(value[0]) is not None):
            out_pair = [value[0], _mask(value[1], _kind_of(value[0]), counts)]
            return out_pair if t is list else tuple(out_pair)
        inner = name if kind is not None else None
        items = [scrub_value(v, counts, inner) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if t is list else tuple(items)
    if kind is not None and (t is int or t is float):
        if counts is not None:
            counts[kind] += 1
        return _marker(kind)
    return value


def _scrub_dict(value: dict, counts: Counter | None) -> dict:
    # OpenAI logprob entries {"token": "Hello", "logprob": -0.1}: the token is model output
    logprob = "logprob" in value
    pair_kind = _pair_name_kind(value)
    out = None
    for k, v in value.items():
        if v is None or v == "" or (logprob and k == "token"):
            continue
        if pair_kind is not None and k == "value":
            new = _mask(v, pair_kind, counts)
        else:
            new = scrub_value(v, counts, k if type(k) is str else None)
        if new is not v:
            if out is None:
                out = dict(value)
            out[k] = new
    return value if out is None else out


def scrub_record(rec: dict, counts: Counter | None = None, skip: frozenset[str] = frozenset()) -> dict:
    """An importer record (flat fields, nested messages/attributes) with secrets removed (copy on write).

    Its own field names are the trace schema's, none of them key-ish, so only
    nested keys (``attributes``, metadata, tool arguments) are judged by name.
    Fields named in ``skip`` are left as they are.
    """
    out = None
    for k, v in rec.items():
        t = type(v)
        if t is str:
            n = len(v)
            if n < 8 or k in skip or (n < 64 and _plain_short(v, n)):
                continue
            new = scrub_text(v, counts)
        elif (t is dict or t is list) and k not in skip:
            new = scrub_value(v, counts)
        else:
            continue
        if new is not v:
            if out is None:
                out = dict(rec)
            out[k] = new
    return rec if out is None else out


def _pair_name_kind(d: dict) -> str | None:
    """A ``{"name": <key-ish>, "value": ...}`` header entry: the kind of its name."""
    if "value" not in d:
        return None
    for k in ("name", "key", "header"):
        n = d.get(k)
        if type(n) is str:
            return _kind_of(n)
    return None


def _mask(v: Any, kind: str | None, counts: Counter | None) -> Any:
    if kind is None or v is None or isinstance(v, bool) or (isinstance(v, str) and _keep_value(v)):
        return scrub_value(v, counts)
    if isinstance(v, str | int | float):
        if counts is not None:
            counts[kind] += 1
        return _marker(kind)
    return scrub_value(v, counts, None)


def describe(counts: Counter) -> str:
    """``counts`` as the ``attributes.scrubbed`` value, e.g. ``anthropic-key:1,url-param:2``."""
    return ",".join(f"{k}:{n}" for k, n in sorted(counts.items()))
