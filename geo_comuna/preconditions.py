"""The preconditions of a change: ``If-Match`` and ``If-None-Match`` (RFC 9110 13.1.1-2),
compared with the row version the change found and locked.

A feature's or a land record's ETag is ``"id.xmin"``, or ``"id.xmin.digest"`` where its
content depends on the reader or on other tables (api/etags.py), weak once compressed in
transfer. A change compares the row version only, and weakly: clients send an ETag back as it
came, and gzip made it weak. ``If-None-Match`` on a change refuses it when the stored version is
one the client names (``*``: any, the feature exists), the guard of a client that means to
write only what it has not seen; ignored, such a client would overwrite without knowing."""

from __future__ import annotations

from dataclasses import dataclass

from geo_comuna.errors import PreconditionFailed, Said


def row_version(tag: str) -> str:
    """The row version in an ETag a client sends back: ``W/"12.345.ab"`` -> ``12.345``."""
    bare = tag.strip().removeprefix("W/").strip('"')
    return ".".join(bare.split(".")[:2])


def _versions(header: str) -> set[str]:
    return {row_version(tag) if tag.strip() != "*" else "*" for tag in header.split(",")}


@dataclass(frozen=True)
class Preconditions:
    """A change's ``If-Match`` and ``If-None-Match`` headers, as sent (None: absent)."""

    match: str | None = None
    none_match: str | None = None

    def check(self, now: str, *, layer: str, feature: int) -> None:
        """Refuse (412) a change of the row whose version is ``now`` (quoted or not) unless
        both headers allow it."""
        now = now.strip('"')
        if self.match is not None:
            wanted = _versions(self.match)
            if "*" not in wanted and now not in wanted:
                raise PreconditionFailed(
                    Said(
                        f"it changed since you read it (now {now}); read it again and "
                        "reapply your change",
                        f"cambió después de que lo leyó (ahora {now}); vuelva a leerlo y "
                        "aplique de nuevo el cambio",
                    ),
                    feature=feature,
                    layer=layer,
                )
        if self.none_match is not None:
            unwanted = _versions(self.none_match)
            if "*" in unwanted or now in unwanted:
                raise PreconditionFailed(
                    Said(
                        f"If-None-Match: {self.none_match.strip()} names what is stored now "
                        f"({'it exists' if '*' in unwanted else now}), so nothing was changed",
                        f"If-None-Match: {self.none_match.strip()} nombra lo que está guardado "
                        f"({'existe' if '*' in unwanted else now}): no se cambió nada",
                    ),
                    feature=feature,
                    layer=layer,
                )


NO_CONDITIONS = Preconditions()
