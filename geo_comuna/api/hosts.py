"""Where absolute links start (``base_url``): the server's public address, or the host a
request came in on when it is one of the server's own names, else nothing (links relative
to the server's root). The Host header is the client's to write."""

from __future__ import annotations

from starlette.requests import Request

from geo_comuna.settings import Settings


def base_url(request: Request, settings: Settings) -> str:
    """Where absolute links start: ``GEO_COMUNA_PUBLIC_URL``, else the address the request
    came in on when its host is trusted, else "" (links relative to the server's root).

    The Host header is the client's to write: followed blindly, it put an attacker's host
    into links and embed snippets that a cache may then hand to everyone."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scope = request.scope
    # what the answer is read from: a request's own URL objects cost ~4 % of a one-feature
    # request, and the same few clients ask by the same few hosts
    key = (
        scope.get("scheme"),
        request.headers.get("host"),
        scope.get("server"),
        scope.get("root_path", ""),
        scope.get("app_root_path"),
        tuple(settings.trusted_hosts),
        settings.host,
    )
    found = _BASES.get(key)
    if found is None:
        if trusted_host(request, settings):
            found = str(request.base_url).rstrip("/")
        else:
            found = scope.get("root_path", "").rstrip("/")
        if len(_BASES) >= MAX_BASES:  # hosts are the client's to write: a bound
            _BASES.clear()
        _BASES[key] = found
    return found


#: base_url's answers by what they are read from, at most MAX_BASES of them
_BASES: dict[tuple[object, ...], str] = {}
MAX_BASES = 256


def trusted_host(request: Request, settings: Settings) -> bool:
    """Is the request's host one of ``settings.trusted_hosts``, the address ``serve`` binds,
    or the very address the connection reached (a client on the LAN asking by IP)?"""
    host = (request.url.hostname or "").lower()
    if not host:
        return False
    server = request.scope.get("server")
    reached = str(server[0]).lower().strip("[]") if server else None
    allowed = [*settings.trusted_hosts, settings.host, reached]
    for name in filter(None, allowed):
        name = name.lower()
        if name == "*" or name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False
