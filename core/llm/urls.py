"""Base URLs of model servers: normal form, server root, and whether a server is local.

A base URL is what the SDK is given: ``http://127.0.0.1:8080/v1`` for an OpenAI-compatible
server (the SDK appends ``/chat/completions``), ``http://127.0.0.1:8080`` for an Anthropic-
compatible one (the SDK appends ``/v1/messages``). The *root* (scheme, host, port) is where
server-specific endpoints live (llama.cpp's ``/props``, Ollama's ``/api/show``).

**Local** means the calls cost no API money: a loopback, private-range (RFC 1918 / unique
local IPv6), link-local or unspecified address, ``localhost``, or a host name ending in
``.local``, ``.lan``, ``.internal``, ``.home.arpa`` or ``.localhost``. No name is looked up in
DNS (that would make the price depend on the resolver). A self-hosted server elsewhere is
priced through ``CAMBRIAN_HOME/prices.toml`` (``core.llm.pricing``).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

ANTHROPIC_API_HOSTS = frozenset({"api.anthropic.com"})
OPENAI_API_HOSTS = frozenset({"api.openai.com"})
LOCAL_SUFFIXES = (".local", ".lan", ".internal", ".home.arpa", ".localhost")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadBaseURL(ValueError):
    pass


def normalize(url: str) -> str:
    """``scheme://host[:port]/path`` in lower case host, default port dropped, no trailing '/'."""
    raw = (url or "").strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadBaseURL(f"not an http(s) base URL: {url!r} (example: http://127.0.0.1:8080/v1)")
    if parts.query or parts.fragment:
        raise BadBaseURL(f"a base URL has no query or fragment: {url!r}")
    host = parts.hostname.lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise BadBaseURL(f"bad port in base URL {url!r}: {exc}") from exc
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def root_of(url: str) -> str:
    """The server root of a base URL: ``http://host:8080/v1`` → ``http://host:8080``."""
    parts = urlsplit(normalize(url))
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def host_of(url: str) -> str:
    return urlsplit(normalize(url)).hostname or ""


def is_local(url: str | None) -> bool:
    """True for a server on this machine or a private network (see the module docstring)."""
    if not url:
        return False
    try:
        host = host_of(url)
    except BadBaseURL:
        return False
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def is_anthropic_api(url: str | None) -> bool:
    """The real Anthropic API: no base URL given, or its own host."""
    if not url:
        return True
    try:
        return host_of(url) in ANTHROPIC_API_HOSTS
    except BadBaseURL:
        return False


def is_openai_api(url: str | None) -> bool:
    if not url:
        return True
    try:
        return host_of(url) in OPENAI_API_HOSTS
    except BadBaseURL:
        return False
