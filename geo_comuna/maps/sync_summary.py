"""A sync's report as lines a person reads, in Spanish or English: what `geo-comuna sync`
prints, and what ``POST /communes/{commune}/sync?lang=`` adds to its diff for the page that
sends a package back. What to do next is said as the one reading it offers it (``HOW``)."""

from __future__ import annotations

from typing import Any

from geo_comuna.errors import said
from geo_comuna.layers import LAYERS
from geo_comuna.maps.styles import Styles
from geo_comuna.maps.templating import number

#: the sync's options as the page that sends a package back labels them (maps/pages.py)
LABELS = {
    "es": {
        "delete_missing": "Borrar las entidades que el paquete ya no tiene",
        "theirs": "conservar lo del servidor",
        "ours": "guardar lo del paquete",
    },
    "en": {
        "delete_missing": "Delete the features the package no longer has",
        "theirs": "keep the server's values",
        "ours": "write the package's values",
    },
}
#: how to do what an unapplied deletion or a conflict left, as the command line says it
#: and as the page does
HOW = {
    "cli": {
        "es": {
            "delete": "use --delete-missing",
            "settle": "--theirs conserva lo del servidor, --ours guarda lo del paquete",
        },
        "en": {
            "delete": "use --delete-missing",
            "settle": "--theirs keeps the server's values, --ours writes the package's",
        },
    },
    # a program's request (curl, a script): the query's own parameters
    "api": {
        "es": {
            "delete": "envíe delete_missing=true",
            "settle": "conflicts=theirs conserva lo del servidor, conflicts=ours guarda lo del "
            "paquete",
        },
        "en": {
            "delete": "send delete_missing=true",
            "settle": "conflicts=theirs keeps the server's values, conflicts=ours writes the "
            "package's",
        },
    },
    "page": {
        "es": {
            "delete": f"marque «{LABELS['es']['delete_missing']}»",
            "settle": f"elija «{LABELS['es']['theirs']}» o «{LABELS['es']['ours']}» y revise de "
            "nuevo",
        },
        "en": {
            "delete": f"tick “{LABELS['en']['delete_missing']}”",
            "settle": f"choose “{LABELS['en']['theirs']}” or “{LABELS['en']['ours']}” and "
            "check again",
        },
    },
}
#: what a person reads, in each language
TEXT = {
    "es": {
        "dry": "Simulación: no se guardó nada.",
        "written": "{n} {features} (auditoría: «sync {file}»).",
        "features": ("entidad guardada", "entidades guardadas"),
        # the states are context and never synced: "the package matches" said so of a
        # package whose states were edited (found from outside)
        "nothing": "Nada que cambiar: lo que una sincronización escribe coincide con la base de "
        "datos (los estados son de contexto: nunca se sincronizan).",
        "log": (
            "Si el proyecto de QGIS seguía abierto cuando se envió el paquete, sus últimas "
            "ediciones están en el archivo .gpkg-wal junto al GeoPackage, no en él: cierre el "
            "proyecto y envíelo de nuevo."
        ),
        "added": ("nueva", "nuevas"),
        "changed": ("cambiada", "cambiadas"),
        "deleted": ("borrada", "borradas"),
        "missing": (
            "ausente del paquete (no borrada; {delete})",
            "ausentes del paquete (no borradas; {delete})",
        ),
        "conflicts": ("conflicto", "conflictos"),
        "synced": (
            "nueva ya guardada por una sincronización anterior",
            "nuevas ya guardadas por una sincronización anterior",
        ),
        "newer": (
            "nueva en el servidor desde que se hizo el paquete (se conserva)",
            "nuevas en el servidor desde que se hizo el paquete (se conservan)",
        ),
        "conflict": "  conflicto {id}: cambiada en el paquete y en el servidor (versión del "
        "paquete {ours}, del servidor {theirs})",
        "gone": "  conflicto {id}: borrada en el servidor desde que se hizo el paquete",
        "deleted_here": "  conflicto {id}: borrada en el paquete, cambiada en el servidor desde "
        "que se hizo el paquete (versión del servidor {theirs})",
        "field": "    {name}: paquete {ours} / servidor {theirs}",
        "geometry_both": "    Geometría: distinta en el paquete y en el servidor",
        "also": "    solo en el paquete, se guarda al resolver: {names}",
        "ours_dry": "resuelto: se guardaría lo del paquete",
        "theirs_dry": "resuelto: se conservaría lo del servidor",
        "listed": "  {what}: {ids}",
        "rows": "fid en el paquete",
        "more": "y {n} más",
        "unresolved": "{n} {conflicts} sin guardar: {settle}.",
        "ours": "resuelto: se guardó lo del paquete",
        "theirs": "resuelto: se conservó lo del servidor",
        "ours_deleted": "resuelto: se borró, como en el paquete",
        "ours_deleted_dry": "resuelto: se borraría, como en el paquete",
        "repaired": "  reparada {layer} {feature}: {reason}{pct}",
        "area_change": " (área {pct})",
        "not_field": "  no se guardó la columna «{name}» ({n} {values}): no es un campo de la capa",
        "values": ("valor", "valores"),
        "read_only": "  no se guardó {name}, que calcula el servidor, cambiado en: {ids}",
        "read_only_rows": "  no se guardó {name}, que calcula el servidor, dado en entidades "
        "nuevas (fid): {ids}",
        "geometry": "Geometría",
        "moved": "movida",
        "empty": "(vacío)",
        "yes": "sí",
        "no": "no",
    },
    "en": {
        "dry": "Dry run: nothing was written.",
        "written": "{n} {features} (audit: 'sync {file}').",
        "features": ("feature written", "features written"),
        "nothing": "Nothing to change: what a sync writes matches the database (the states "
        "are context: never synced).",
        "log": (
            "If the QGIS project was still open when the package was sent, its last edits are "
            "in the .gpkg-wal file beside the GeoPackage, not in it: close the project and "
            "send it again."
        ),
        "added": ("added", "added"),
        "changed": ("changed", "changed"),
        "deleted": ("deleted", "deleted"),
        "missing": ("missing from the package (not deleted; {delete})",) * 2,
        "conflicts": ("conflict", "conflicts"),
        "synced": ("new but stored by an earlier sync already",) * 2,
        "newer": ("added on the server since the package was made (kept)",) * 2,
        "conflict": "  conflict {id}: changed in the package and on the server (package "
        "version {ours}, server version {theirs})",
        "gone": "  conflict {id}: deleted on the server since the package was made",
        "deleted_here": "  conflict {id}: deleted in the package, changed on the server since "
        "the package was made (server version {theirs})",
        "field": "    {name}: package {ours} / server {theirs}",
        "geometry_both": "    Geometry: differs between the package and the server",
        "also": "    in the package only, saved once settled: {names}",
        "ours_dry": "settled: the package's values would be written",
        "theirs_dry": "settled: the server's values would be kept",
        "listed": "  {what}: {ids}",
        "rows": "fid in the package",
        "more": "and {n} more",
        "unresolved": "{n} {conflicts} left unwritten: {settle}.",
        "ours": "settled: the package's values written",
        "theirs": "settled: the server's values kept",
        "ours_deleted": "settled: deleted, as in the package",
        "ours_deleted_dry": "settled: it would be deleted, as in the package",
        "repaired": "  repaired {layer} {feature}: {reason}{pct}",
        "area_change": " (area {pct})",
        "not_field": "  column '{name}' ({n} {values}) not written: it is no field of the layer",
        "values": ("value", "values"),
        "read_only": "  {name}, which the server works out, not written where changed: {ids}",
        "read_only_rows": "  {name}, which the server works out, not written where new "
        "features (fid) gave it: {ids}",
        "geometry": "Geometry",
        "moved": "moved",
        "empty": "(empty)",
        "yes": "yes",
        "no": "no",
    },
}


def counted(n: int, words: tuple[str, str]) -> str:
    """ "1 conflicto", "2 conflictos": the number and the word it takes."""
    return f"{n} {words[0] if n == 1 else words[1]}"


def _repaired(t: dict[str, Any], repair: dict[str, Any], lang: str) -> str:
    """A repair as people read it; the area's change where it means something (see
    features/validate._area_change), written as the language writes numbers."""
    pct = repair.get("area_change_pct")
    change = ""
    if pct is not None:
        change = t["area_change"].format(pct=f"{'+' if pct > 0 else ''}{number(lang)(pct)} %")
    return t["repaired"].format(
        layer=_titled(repair["layer"], None, lang),
        feature=said(repair["feature"], lang)
        if isinstance(repair["feature"], str)
        else repair["feature"],
        reason=said(repair["reason"], lang),
        pct=change,
    )


def _titled(layer: str, field: str | None, lang: str) -> str:
    """A layer's or a field's title in ``lang``, the name in the file beside a layer's (what
    QGIS and the GeoPackage show): 'Parcelas (parcels)', 'Tenencia'. The summary said the
    codes alone."""
    found = LAYERS.get(layer)
    if found is None:
        return field or layer
    if field is None:
        return f"{found.title.get(lang)} ({layer})"
    return found.field_title(field, lang)


def _value(layer: str, field: str, value: Any, lang: str, codes: dict | None = None) -> Any:
    """A coded value by its label in ``lang`` ('Abandonada (recuperable)'), a feature a
    reference names by id with its code beside ('12 (EM-P001)', from SyncReport.codes), a
    yes/no as a word, else as it is."""
    if isinstance(value, bool):  # a form's box ticked or not (it said True and False)
        return TEXT[lang]["yes" if value else "no"]
    found = LAYERS.get(layer)
    reference = found.reference(field) if found is not None else None
    if reference is not None and value in (codes or {}).get(reference.table, {}):
        return f"{value} ({codes[reference.table][value]})"  # type: ignore[index]
    attribute = found.attribute(field) if found is not None else None
    domain = getattr(attribute, "domain", None)
    if domain is not None and isinstance(value, str) and value in domain.values:
        # as the package's drop-downs and the maps say it (found from outside: the report
        # said 'Abandonada' where the form said 'Abandonada (recuperable)')
        return Styles.load().value_label(domain, value, lang)
    return value


def summary(report: Any, lang: str, reader: str = "cli") -> list[str]:
    """The report as lines a person reads, in ``lang``; what to do next said as ``reader``
    (HOW: the command line, or the page) offers it."""
    t = {**TEXT[lang], "options": HOW[reader][lang]}
    lines = []
    for name, diff in report.layers.items():
        # new rows an earlier sync stored are said too (found from outside: a file sent
        # again, or after a sync cut short, said nothing of the 1,500 homes it had stored)
        if diff or diff.synced:
            lines += _layer_lines(name, diff, report, t, lang)
    lines += [_repaired(t, r, lang) for r in report.repairs]
    if not any(report.layers.values()) and not report.repairs:
        lines.append(t["nothing"])
    if report.log_left_behind:  # found from outside: an edit was missing, said nowhere
        lines.append(t["log"])
    if report.unresolved:
        n = report.unresolved
        lines.append(t["unresolved"].format(n=n, conflicts=t["conflicts"][n != 1], **t["options"]))
    if report.dry_run:
        lines.append(t["dry"])
    elif report.written:
        n = report.written
        lines.append(t["written"].format(n=n, features=t["features"][n != 1], file=report.file))
    return lines


def _layer_lines(name: str, diff: Any, report: Any, t: dict, lang: str) -> list[str]:
    """One layer's counts, then each change (the feature's id and code, each field's value
    before and after: '30 (EM-P001): Tenencia: Ocupada → En disputa') and each conflict."""
    deleted = t["deleted"]
    if not report.delete_missing:
        deleted = tuple(words.format(**t["options"]) for words in t["missing"])
    counts = [
        counted(len(ids), words)
        for ids, words in (
            (diff.added, t["added"]),
            (diff.changed, t["changed"]),
            (diff.missing, deleted),
            (diff.conflicts, t["conflicts"]),
            (diff.synced, t["synced"]),
            (diff.newer, t["newer"]),
        )
        if ids  # a count of none was noise on every layer
    ]
    title = _titled(name, None, lang)
    lines = [f"{title}: " + ", ".join(counts) if counts else f"{title}:"]
    if diff.added:  # new features by their rows in the package's layer, and the ids stored
        ids = _few(diff.added, t, diff.added_named, diff.created)
        lines.append(t["listed"].format(what=f"{t['added'][1]} ({t['rows']})", ids=ids))
    if diff.missing:
        what = deleted[1].split(" (")[0]
        lines.append(t["listed"].format(what=what, ids=_few(diff.missing, t, diff.stored_named)))
    if diff.newer:
        newer = t["newer"][1].split(" (")[0]
        lines.append(t["listed"].format(what=newer, ids=_few(diff.newer, t, diff.stored_named)))
    lines += _not_written(name, diff, t, lang)
    for change in diff.changed:
        fields = "; ".join(
            _changed(name, f, pair, t, lang, report.codes) for f, pair in change.fields.items()
        )
        lines.append(f"  {_which(change.id, change.code or change.name)}: {fields}")
    for conflict in diff.conflicts:
        key = "gone" if conflict.server_version is None else "conflict"
        if conflict.deleted_in_package:
            key = "deleted_here"
        ours, theirs = conflict.package_version, conflict.server_version
        called = conflict.code or conflict.name
        line = t[key].format(id=_which(conflict.id, called), ours=ours, theirs=theirs)
        if conflict.resolved:
            # deleted in the package, 'ours' deletes it: "the package's values written" said
            # otherwise (found from outside)
            gone = "_deleted" if conflict.deleted_in_package and conflict.resolved == "ours" else ""
            settled = conflict.resolved + gone + ("_dry" if report.dry_run else "")
            line += f" ({t[settled]})"
        lines.append(line)
        for field, both in conflict.fields.items():
            if field == "geometry":
                lines.append(t["geometry_both"])
                continue
            ours, theirs = (
                _conflicting(name, field, both[k], t, lang, report.codes)
                for k in ("package", "server")
            )
            title = _titled(name, field, lang)
            lines.append(t["field"].format(name=title, ours=ours, theirs=theirs))
        if conflict.also:
            names = ", ".join(
                t["geometry"] if f == "geometry" else _titled(name, f, lang) for f in conflict.also
            )
            lines.append(t["also"].format(names=names))
    return lines


def _not_written(name: str, diff: Any, t: dict, lang: str) -> list[str]:
    """What of the package's layer the sync leaves out: columns no field, edited values the
    server works out."""
    lines = [
        t["not_field"].format(name=column, n=n, values=t["values"][n != 1])
        for column, n in diff.not_fields.items()
    ]
    for key, found in (("read_only", diff.read_only), ("read_only_rows", diff.read_only_rows)):
        lines += [
            t[key].format(name=_titled(name, field, lang), ids=_few(ids, t))
            for field, ids in found.items()
        ]
    return lines


def _which(fid: int, code: str | None) -> str:
    """A feature as people call it: its id, and its code (or name) beside where it has one."""
    return f"{fid} ({code})" if code else f"{fid}"


#: ids a summary lists of one kind before it counts the rest
FEW = 20


def _few(
    ids: list[int],
    t: dict,
    named: dict[int, str] | None = None,
    stored: dict[int, int] | None = None,
) -> str:
    """The first FEW of ``ids``, each with its code or name where ``named`` has one, and the
    id it was stored under where ``stored`` has one ('12 (MZ-F1) → id 190')."""
    named, stored = named or {}, stored or {}
    shown = ", ".join(
        _which(i, named.get(i)) + (f" → id {stored[i]}" if i in stored else "") for i in ids[:FEW]
    )
    return shown if len(ids) <= FEW else f"{shown} {t['more'].format(n=len(ids) - FEW)}"


def _changed(
    layer: str, field: str, pair: list[Any], t: dict, lang: str, codes: dict | None = None
) -> str:
    """A changed field as 'Tenencia: Ocupada → En disputa' (the server's value, then the
    package's), a moved geometry as 'Geometría: movida'."""
    title = _titled(layer, field, lang) if field != "geometry" else t["geometry"]
    if field == "geometry":
        return f"{title}: {t['moved']}"
    new, old = (_value(layer, field, v, lang, codes) for v in pair)
    return f"{title}: {_shown(old, t)} → {_shown(new, t)}"


def _shown(value: Any, t: dict) -> str:
    return t["empty"] if value is None or value == "" else str(value)


def _conflicting(layer: str, field: str, value: Any, t: dict, lang: str, codes: dict) -> str:
    """A conflict's value: a text quoted, so that its spaces show; an empty one said so (it
    printed None); a referenced feature with its code."""
    shown = _value(layer, field, value, lang, codes)
    if value is None or value == "":
        return t["empty"]
    return repr(shown) if isinstance(value, str) else str(shown)
