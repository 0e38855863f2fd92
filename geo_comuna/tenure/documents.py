"""Source documents (scans and photos): an upload is hostile until its bytes say otherwise.

The type comes from the first bytes, never from the name; a name whose ending says another
type (a JPEG called deed.pdf) is refused, naming the file and both types. A size limit
(Settings.max_document_bytes) holds before anything is read. Photos are opened with Pillow
only for their EXIF (no pixel is decoded; a decompression bomb is refused by Pillow's own
pixel limit), in a child process killed when slow (work.in_child): the GPS position (WGS 84
degrees) and the time taken.
HEIC photos (phones' default) are read with pillow-heif (libheif): only their container and
EXIF block, no image decoded, and without registering a HEIF opener in Pillow for the rest
of the process. They are stored as sent (migration 0024), never converted.

Bytes are stored once per SHA-256 (document_contents); pg_dump carries them (migration 0021).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import PurePosixPath

import anyio
import pillow_heif
from PIL import Image, UnidentifiedImageError
from psycopg import AsyncConnection

from geo_comuna import work
from geo_comuna.accounts import User, writing
from geo_comuna.errors import (
    OUTSIDE_COMMUNES,
    Forbidden,
    InvalidFile,
    InvalidInput,
    NotFound,
    Said,
    TooLarge,
    Unsupported,
    said,
)
from geo_comuna.layers.tenure import DOCUMENT_TYPES
from geo_comuna.tenure import records
from geo_comuna.tenure.refusals import refused
from geo_comuna.text import is_text

#: EXIF tags (Pillow): the GPS sub-directory, the Exif sub-directory, DateTimeOriginal,
#: DateTime
GPS_IFD, EXIF_IFD, TAKEN, DATETIME = 0x8825, 0x8769, 36867, 306
_NAMES = {
    "application/pdf": "a PDF",
    "image/jpeg": "a JPEG image",
    "image/png": "a PNG image",
    "image/heic": "a HEIC photo",
}
_NAMES_ES = {
    "application/pdf": "un PDF",
    "image/jpeg": "una imagen JPEG",
    "image/png": "una imagen PNG",
    "image/heic": "una foto HEIC",
}
#: the brands of an ISO base media file's ftyp box that say HEIF still images (HEVC-coded:
#: heic, heix; any coding: mif1, which AVIF files carry too: libheif then says what it is)
HEIC_BRANDS = (b"heic", b"heix", b"mif1")


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show: PDF, JPEG, PNG, HEIC (an ftyp box, first in the
    file, whose major brand is a HEIF image's), or None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "image/heic"
    return None


def media_type(data: bytes, filename: str | None) -> str:
    """What the upload is, from its bytes; refused when they are no accepted type or the
    file's name says another one."""
    name = filename or "the document"
    name_es = filename or "el documento"
    found = sniff(data[:16])
    if found is None:
        raise Unsupported(
            Said(
                f"{name}: its bytes are not a PDF, JPEG, PNG or HEIC",
                f"{name_es}: su contenido no es un PDF, JPEG, PNG ni HEIC",
            )
        )
    suffix = PurePosixPath(filename or "").suffix.lower()
    if suffix:
        for other, (_, endings) in DOCUMENT_TYPES.items():
            if suffix in endings and other != found:
                raise Unsupported(
                    Said(
                        f"{name}: named {suffix} ({_NAMES[other]}) but its bytes are "
                        f"{_NAMES[found]}; the name lies about the content",
                        f"{name_es}: su nombre termina en {suffix} ({_NAMES_ES[other]}) pero "
                        f"su contenido es {_NAMES_ES[found]}; el nombre no corresponde "
                        "al contenido",
                    )
                )
        if suffix not in DOCUMENT_TYPES[found][1]:
            raise Unsupported(
                Said(
                    f"{name}: the ending {suffix} is not one of {_NAMES[found]}'s "
                    f"({', '.join(DOCUMENT_TYPES[found][1])})",
                    f"{name_es}: la terminación {suffix} no es de {_NAMES_ES[found]} "
                    f"({', '.join(DOCUMENT_TYPES[found][1])})",
                )
            )
    if found == "application/pdf" and b"%%EOF" not in data[-2048:]:
        raise InvalidFile(
            Said(
                f"{name}: a PDF without its end (%%EOF): cut short?",
                f"{name_es}: un PDF sin su final (%%EOF): ¿quedó cortado?",
            )
        )
    return found


@dataclass(frozen=True)
class PhotoPlace:
    """Where and when a photo says it was taken (EXIF), when it says."""

    lon: float | None = None
    lat: float | None = None
    taken_at: dt.datetime | None = None


def _degrees(dms: object, ref: object, negative: str) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)  # type: ignore[union-attr]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    return -value if str(ref).upper().startswith(negative) else value


def _exif(data: bytes, kind: str) -> Image.Exif:
    """The photo's EXIF, its pixels left undecoded. A HEIC's is read from its container by
    libheif (its ``exif`` item) and parsed by Pillow; its size is checked against Pillow's
    pixel limit like a JPEG's would be."""
    if kind != "image/heic":
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG":
                return image.getexif()
            # a PNG's from its eXIf chunk as read with the header: getexif() decodes every
            # pixel to look for one after them (found from outside: 350 MB for a 343 KB file)
            exif = Image.Exif()
            if raw := image.info.get("exif"):
                exif.load(raw)
            return exif
    heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)
    width, height = heif.size
    if Image.MAX_IMAGE_PIXELS and width * height > 2 * Image.MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"{width}x{height}")
    exif = Image.Exif()
    raw = heif.info.get("exif")
    if raw:
        exif.load(raw)
    return exif


def photo_place(data: bytes, name: str, kind: str = "image/jpeg") -> PhotoPlace:
    """The EXIF GPS position (WGS 84, degrees) and time of a JPEG, PNG or HEIC photo;
    nothing decoded beyond the headers. A file that cannot be opened as the image its bytes
    claim is refused."""
    try:
        exif = _exif(data, kind)
        gps = exif.get_ifd(GPS_IFD)
        when = exif.get_ifd(EXIF_IFD).get(TAKEN) or exif.get(DATETIME)
    except Image.DecompressionBombError:
        raise InvalidFile(
            Said(
                f"{name}: an image of too many pixels",
                f"{said(name, 'es')}: una imagen de demasiados píxeles",
            )
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, RuntimeError) as exc:
        raise InvalidFile(
            Said(
                f"{name}: not a readable image ({exc})",
                f"{said(name, 'es')}: no es una imagen legible ({exc})",
            )
        ) from None
    lat = _degrees(gps.get(2), gps.get(1, "N"), "S") if gps else None
    lon = _degrees(gps.get(4), gps.get(3, "E"), "W") if gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    taken = None
    if isinstance(when, str):
        try:
            taken = dt.datetime.strptime(when.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        except ValueError:
            taken = None
    return PhotoPlace(lon, lat, taken)


#: what to do with a photo its reader could not read in time, or at all
PHOTO_AGAIN = Said("save the photo again as a JPEG", "vuelva a guardar la foto como JPEG")
#: what a document is attached to: the argument and its column
ATTACHMENTS = {"party": "party_id", "right": "right_id", "parcel": "parcel_id"}


async def upload(
    conn: AsyncConnection,
    user: User,
    data: bytes,
    *,
    filename: str | None,
    title: str,
    attached_to: dict[str, int | None],
    limit: int,
    illustrative: bool = False,
) -> dict:
    """Store one document attached to exactly one party, right or parcel; its id, SHA-256,
    type and photo position. Row-level security decides whether the user may attach it."""
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; uploading needs an editor or admin",
                f"el usuario {user.name!r} tiene el rol {user.role}; para subir documentos "
                "hace falta ser editor o admin",
            )
        )
    given = {k: v for k, v in attached_to.items() if v is not None}
    if len(given) != 1:
        raise InvalidInput(
            Said(
                "attach the document to exactly one of party, right or parcel",
                "adjunte el documento a uno solo de: sujeto de derecho (party), derecho (right) "
                "o parcela (parcel)",
            )
        )
    title = title.strip()
    if not is_text(title) or (filename is not None and not is_text(filename)):
        raise InvalidInput(  # found from outside: PostgreSQL refused them, a 500
            Said(
                "the document's title or file name holds a NUL character or a lone surrogate, "
                "which text cannot",
                "el título o el nombre de archivo del documento contiene un carácter NUL o un "
                "sustituto suelto, que un texto no puede contener",
            )
        )
    if not 1 <= len(title) <= 300:
        raise InvalidInput(
            Said(
                "give the document a title of 1 to 300 characters",
                "dé al documento un título de 1 a 300 caracteres",
            )
        )
    if len(data) > limit:
        raise TooLarge(
            Said(
                f"{filename or 'the document'}: {len(data)} bytes, over {limit}",
                f"{filename or 'el documento'}: {len(data)} bytes, más de {limit}",
            )
        )
    if not data:
        raise InvalidFile(
            Said(f"{filename or 'the document'}: empty", f"{filename or 'el documento'}: vacío")
        )
    kind = media_type(data, filename)
    place = PhotoPlace()
    if kind != "application/pdf":
        name = filename or Said("the document", "el documento")
        # in a child process killed when slow: libheif and Pillow read the uploader's bytes
        place = await anyio.to_thread.run_sync(
            work.in_child, name, PHOTO_AGAIN, len(data), photo_place, data, name, kind
        )
    digest = hashlib.sha256(data).hexdigest()
    ((what, ref),) = given.items()
    if what == "parcel":  # parcels are public: one that is not there is a 404, not a 403
        cur = await conn.execute("SELECT FROM parcels WHERE id = %s", (ref,))
        if await cur.fetchone() is None:
            raise NotFound(Said(f"no parcel {ref}", f"no hay ninguna parcela {ref}"))
    async with writing(conn, user):
        await conn.execute(
            "INSERT INTO document_contents (sha256, bytes) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (digest, data),
        )
        with refused("documents"):
            cur = await conn.execute(
                f"""INSERT INTO documents (sha256, media_type, size_bytes, title, filename,
                                           {ATTACHMENTS[what]}, position, taken_at, illustrative)
                    VALUES (%(sha)s, %(type)s, %(size)s, %(title)s, %(filename)s, %(ref)s,
                            CASE WHEN %(lon)s::float8 IS NOT NULL
                                 THEN ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) END,
                            %(taken)s, %(illustrative)s)
                    RETURNING id""",
                {
                    "sha": digest,
                    "type": kind,
                    "size": len(data),
                    "title": title,
                    "filename": PurePosixPath(filename).name[:255] if filename else None,
                    "ref": ref,
                    "lon": place.lon,
                    "lat": place.lat,
                    "taken": place.taken_at,
                    "illustrative": illustrative,
                },
            )
            (new_id,) = await cur.fetchone()
    position = None if place.lon is None else [place.lon, place.lat]
    return {
        "id": new_id,
        "sha256": digest,
        "media_type": kind,
        "size_bytes": len(data),
        "position": position,
    }


async def remove(conn: AsyncConnection, user: User, document_id: int) -> None:
    """Delete one document (an editor of its commune, or an admin; audited): a parcel's own
    documents must go before the parcel can (migration 0032), and a document attached by
    mistake had no way out. 404 when there is none the user may read, 403 when they may read
    it but it is another commune's."""
    if not user.may_write:
        raise Forbidden(
            Said(
                f"user {user.name!r} is a {user.role}; deleting needs an editor or admin",
                f"el usuario {user.name!r} tiene el rol {user.role}; para borrar hace falta "
                "ser editor o admin",
            )
        )
    async with writing(conn, user):
        with refused("documents", document_id):
            cur = await conn.execute(
                "DELETE FROM documents WHERE id = %s RETURNING id", (document_id,)
            )
            if await cur.fetchone() is not None:
                return
    # found from outside: a document the user may not read was a 403 here and a 404 to GET,
    # which told that it exists; it is a 404 to both (records.document raises it)
    await records.document(conn, user, document_id)
    raise Forbidden(OUTSIDE_COMMUNES, feature=document_id, layer="documents")
