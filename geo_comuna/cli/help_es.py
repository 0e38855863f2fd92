"""Every command's --help in Spanish: the commands' and options' help, by their English text
(blanks folded: ``folded``), and click's and typer's own words around them. English stays
where the code says it; tests/test_cli_help.py checks that every help text of the command
tree has its Spanish here, and that nothing here is left over, so an English help changed
without its Spanish fails the suite instead of showing English in a Spanish help."""

from __future__ import annotations

from typing import Any

#: typer's words around the help texts (typer.rich_utils' module settings), in Spanish
FRAME = {
    "ARGUMENTS_PANEL_TITLE": "Argumentos",
    "OPTIONS_PANEL_TITLE": "Opciones",
    "COMMANDS_PANEL_TITLE": "Comandos",
    "REQUIRED_LONG_STRING": "[obligatorio]",
    "DEFAULT_STRING": "[por defecto: {}]",
    "ENVVAR_STRING": "[variable de entorno: {}]",
}
HELP_OPTION = "Muestra esta ayuda y termina."
#: the examples' heading in both languages (cli/examples.py), and in each
EXAMPLES_BOTH = "Examples / Ejemplos:"
EXAMPLES = {"es": "Ejemplos:", "en": "Examples:"}
USAGE = "Uso: "
#: click's words in a usage line, in Spanish
USAGE_WORDS = (("[OPTIONS]", "[OPCIONES]"), ("COMMAND [ARGS]", "COMANDO [ARGS]"))

SPANISH = {
    # geo-comuna
    "geo_comuna: the GIS core for Venezuela's communes.": (
        "geo_comuna: el núcleo SIG de las comunas de Venezuela."
    ),
    "say which database the command uses (on stderr) first": (
        "decir primero qué base de datos usa el comando (en stderr)"
    ),
    "es or en: the language of the messages (default: the locale's, else es)": (
        "es o en: el idioma de los mensajes (por defecto: el del sistema; si no, español)"
    ),
    "es or en (default: the locale's, Spanish unless English)": (
        "es o en (por defecto: el del sistema; español salvo si es inglés)"
    ),
    "commune code or id": "código o id de la comuna",
    # serve
    "Serve the API (OGC API - Features) and maps; starts the embedded database if needed. "
    "Started as root, it binds the port and then runs as GEO_COMUNA_RUN_AS (default "
    "GEO_COMUNA_PG_OS_USER), or refuses to start. With several workers each process has its "
    "own connection pool and caches; the caches are keyed by the layers' versions read from "
    "the database, so a write through one worker is seen by all at once "
    "(GEO_COMUNA_TILE_CACHE_DIR shares the tiles between them).": (
        "Sirve la API (OGC API - Features) y los mapas; arranca la base de datos integrada si "
        "hace falta. Iniciado como root, abre el puerto y luego corre como GEO_COMUNA_RUN_AS "
        "(por defecto GEO_COMUNA_PG_OS_USER), o no arranca. Con varios procesos cada uno tiene "
        "sus conexiones y cachés; las cachés se guardan por la versión de cada capa leída en la "
        "base de datos, así que lo escrito por un proceso lo ven todos al instante "
        "(GEO_COMUNA_TILE_CACHE_DIR comparte las teselas entre ellos)."
    ),
    "address to bind (default 127.0.0.1)": "dirección donde escuchar (por defecto 127.0.0.1)",
    "port (default 8000)": "puerto (por defecto 8000)",
    "load the sample territories first if they are not there": (
        "cargar antes los territorios de ejemplo si no están"
    ),
    "processes answering requests (default: one per CPU)": (
        "procesos que atienden las peticiones (por defecto: uno por CPU)"
    ),
    # load-sample
    "Load Venezuela's states and the illustrative sample communes (replaces earlier ones).": (
        "Carga los estados de Venezuela y las comunas de ejemplo (reemplaza las anteriores)."
    ),
    # import
    "Import a file into a layer: all features or none. A feature whose natural key is "
    "already stored is refused, or with --upsert updates the stored one. Coded values may be "
    "given by code or by their Spanish or English label.": (
        "Importa un archivo a una capa: todas las entidades o ninguna. Una entidad cuya clave "
        "natural ya está guardada se rechaza, o con --upsert actualiza la guardada. Los valores "
        "codificados se pueden dar por su código o por su etiqueta en español o en inglés."
    ),
    "layer name, e.g. parcels": "nombre de la capa, p. ej. parcels",
    "GeoJSON, GeoPackage, zipped Shapefile, KML, CSV": (
        "GeoJSON, GeoPackage, Shapefile comprimido en zip, KML, CSV"
    ),
    "CRS of the data when the file does not say (or says wrong), e.g. EPSG:2202": (
        "SRC de los datos cuando el archivo no lo dice (o lo dice mal), p. ej. EPSG:2202"
    ),
    "commune code or id for features without one": (
        "código o id de la comuna para las entidades que no la tienen"
    ),
    "make invalid geometries valid and report each change": (
        "corregir las geometrías no válidas e informar de cada cambio"
    ),
    "add features the layer holds already instead of refusing the import: into a layer "
    "without a natural key, the same in every field and shape; into one with a key, without "
    "their key in the shape of a stored feature": (
        "añadir entidades que la capa ya tiene en lugar de rechazar la importación: en una capa "
        "sin clave natural, iguales en cada campo y en su forma; en una con clave, sin su clave "
        "y con la forma de una entidad guardada"
    ),
    "update the stored feature of the same natural key (a parcel's code in its commune) "
    "instead of refusing the import; unchanged features are left as they are": (
        "actualizar la entidad guardada con la misma clave natural (el código de una parcela en "
        "su comuna) en vez de rechazar la importación; las que no cambian quedan como están"
    ),
    "make the whole import, with every check, then undo it: the report says what it would "
    "write (insert, update, leave unchanged)": (
        "hacer toda la importación, con cada comprobación, y deshacerla: el informe dice lo que "
        "escribiría (insertar, actualizar, dejar sin cambios)"
    ),
    "why the change is made: the parcels' tenure history and the audit record it": (
        "por qué se hace el cambio: lo guardan el historial de tenencia de las parcelas y la "
        "auditoría"
    ),
    "COLUMN=PROPERTY: the file's column holding a property (repeatable)": (
        "COLUMNA=CAMPO: la columna del archivo que tiene un campo (repetible)"
    ),
    "PROPERTY:VALUE=CODE: a value of the file meaning a code or label (repeatable)": (
        "CAMPO:VALOR=CÓDIGO: un valor del archivo que significa un código o etiqueta (repetible)"
    ),
    # export
    "Export layers to a file. A CSV holds no CRS: import it back with the same --crs. "
    "Several layers go into one GeoPackage, or one file each into a directory.": (
        "Exporta capas a un archivo. Un CSV no guarda el SRC: impórtelo de vuelta con el mismo "
        "--crs. Varias capas van a un GeoPackage, o un archivo cada una a una carpeta."
    ),
    "layer name (e.g. parcels), several separated by commas, or 'all' (every layer; with "
    "--commune, everything of that commune)": (
        "nombre de la capa (p. ej. parcels), varias separadas por comas, o 'all' (todas las "
        "capas; con --commune, todo lo de esa comuna)"
    ),
    "file to write (replaced if it exists; a GeoPackage gets the layers added), or a "
    "directory to write <layer><suffix> into": (
        "archivo a escribir (reemplazado si existe; a un GeoPackage se le añaden las capas), o "
        "una carpeta donde escribir <capa><sufijo>"
    ),
    "geojson, gpkg, shp (zipped), kml or csv; default: from FILE's suffix": (
        "geojson, gpkg, shp (en zip), kml o csv; por defecto: según el sufijo de FILE"
    ),
    "CRS to write, e.g. EPSG:2202 (REGVEN / UTM 19N); GeoJSON and KML are EPSG:4326 only": (
        "SRC en que escribir, p. ej. EPSG:2202 (REGVEN / UTM 19N); GeoJSON y KML solo en EPSG:4326"
    ),
    "only this commune's features (code or id)": "solo las entidades de esta comuna (código o id)",
    "replace a layer the GeoPackage already holds (its other layers stay)": (
        "reemplazar una capa que el GeoPackage ya tiene (sus otras capas se quedan)"
    ),
    # backup, restore
    "Back up the whole database to FILE (pg_dump custom format): every layer, the parcel "
    "history, the audit trail, users. Safe while `serve` runs.": (
        "Respalda toda la base de datos en FILE (formato custom de pg_dump): todas las capas, "
        "el historial de las parcelas, la auditoría, los usuarios. Se puede hacer con `serve` "
        "en marcha."
    ),
    "archive to write (replaced once complete)": (
        "archivo a escribir (se reemplaza solo al terminar)"
    ),
    "Replace the database's contents with FILE's, in one transaction: all or nothing. Tokens "
    "revoked since the backup stay revoked; a running `serve` sees the restored data at once.": (
        "Reemplaza el contenido de la base de datos por el de FILE, en una transacción: todo o "
        "nada. Los tokens revocados desde el respaldo siguen revocados; un `serve` en marcha ve "
        "los datos restaurados al instante."
    ),
    "archive made by `geo-comuna backup`": "archivo hecho con `geo-comuna backup`",
    # package
    "A commune's package for QGIS and QField: one GeoPackage with every layer (each feature "
    "with its id and version, for the sync), the map styles, QGIS projects with drop-downs "
    "for coded values, the offline map and the report, in Spanish and English. Whoever runs "
    "the CLI holds the database: the package holds everything, members-only data too, so it "
    "is for the commune's own people, unless --public.": (
        "El paquete de una comuna para QGIS y QField: un GeoPackage con todas las capas (cada "
        "entidad con su id y versión, para la sincronización), los estilos del mapa, proyectos "
        "de QGIS con listas desplegables para los valores codificados, el mapa sin conexión y "
        "el informe, en español y en inglés. Quien usa la línea de comandos tiene acceso a toda "
        "la base de datos: el paquete lleva todo, también lo que solo leen los miembros, así "
        "que es para la gente de la comuna, salvo con --public."
    ),
    "zip file to write (replaced once complete)": (
        "archivo zip a escribir (se reemplaza solo al terminar)"
    ),
    "only what everyone may read (no parcel notes, residents or home positions), as an "
    "anonymous download of GET /communes/{c}/package has it": (
        "solo lo que cualquiera puede leer (sin notas de parcelas, residentes ni posición de "
        "las viviendas), como lo da una descarga anónima de GET /communes/{c}/package"
    ),
    # analyze
    "Run a planning analysis for a commune and print its figures as a short table, in "
    "Spanish or English; --json, --geojson and --csv give the whole answer to programs.": (
        "Ejecuta un análisis de planificación para una comuna y escribe sus cifras en una tabla "
        "corta, en español o en inglés; --json, --geojson y --csv dan la respuesta entera a "
        "otros programas."
    ),
    "the analysis, e.g. water-hookups (--list names them)": (
        "el análisis, p. ej. water-hookups (--list los nombra)"
    ),
    "analysis parameter as key=value (repeatable)": (
        "parámetro del análisis como clave=valor (repetible)"
    ),
    "list the analyses and their parameters": "listar los análisis y sus parámetros",
    "the whole summary as JSON": "el resumen entero en JSON",
    "the answer's features as GeoJSON": "las entidades de la respuesta en GeoJSON",
    "the answer's rows as CSV": "las filas de la respuesta en CSV",
    "json, geojson or csv (as the flags)": "json, geojson o csv (como las opciones)",
    "write to this file, not stdout": "escribir en este archivo, no en la salida estándar",
    # sync
    "Bring a commune package's field edits back (made with geo-comuna package, edited in "
    "QGIS or QField): features with an id update the stored ones that differ, features "
    "without an id are new. A field changed both in the package and on the server since the "
    "package was made is a conflict, reported with both values and left unwritten unless "
    "--theirs or --ours; a field changed on one side only takes that side's value. One "
    "transaction: a refused feature writes nothing. Exit code 3 when conflicts were left "
    "unwritten.": (
        "Trae de vuelta lo editado en campo en el paquete de una comuna (hecho con geo-comuna "
        "package, editado en QGIS o QField): las entidades con id actualizan las guardadas que "
        "difieren, las que no tienen id son nuevas. Un campo cambiado en el paquete y también "
        "en el servidor desde que se hizo el paquete es un conflicto: se informa con ambos "
        "valores y no se guarda, salvo con --theirs o --ours; un campo cambiado de un solo lado "
        "toma el valor de ese lado. Una sola transacción: una entidad rechazada no deja guardar "
        "nada. Código de salida 3 si quedaron conflictos sin guardar."
    ),
    "the package's comuna.gpkg, or the package's .zip": (
        "el comuna.gpkg del paquete, o el .zip del paquete"
    ),
    "delete the commune's features the package no longer has (without it they are only reported)": (
        "borrar las entidades de la comuna que el paquete ya no tiene (sin esta opción solo se "
        "informan)"
    ),
    "print the differences and check every write as the sync would, write nothing": (
        "mostrar las diferencias y comprobar cada escritura como lo haría la sincronización, "
        "sin guardar nada"
    ),
    "make invalid geometries valid (ST_MakeValid), each change reported": (
        "corregir las geometrías no válidas (ST_MakeValid), informando de cada cambio"
    ),
    "on a conflict (changed on the server and in the package) keep the server's values": (
        "ante un conflicto (cambiada en el servidor y en el paquete) conservar los valores del "
        "servidor"
    ),
    "on a conflict (changed on the server and in the package) write the package's values "
    "over the server's": (
        "ante un conflicto (cambiada en el servidor y en el paquete) guardar los valores del "
        "paquete sobre los del servidor"
    ),
    "the whole diff as JSON instead of the summary": (
        "todas las diferencias en JSON en vez del resumen"
    ),
    # sheet
    "A parcel's printable sheet (A4 PDF): map, area, perimeter, vertices in REGVEN / UTM, "
    "linderos, tenure history, holders and documents, QR code. With --commune and no PARCEL, "
    "one sheet per parcel of the commune and an index, in the folder --out.": (
        "La ficha imprimible de una parcela (PDF A4): mapa, área, perímetro, vértices en "
        "REGVEN / UTM, linderos, historial de tenencia, titulares y documentos, código QR. Con "
        "--commune y sin PARCEL, una ficha por cada parcela de la comuna y un índice, en la "
        "carpeta --out."
    ),
    "the parcel's id, or its code with --commune": "el id de la parcela, o su código con --commune",
    "commune code or id: every parcel's sheet (or the parcel PARCEL's)": (
        "código o id de la comuna: la ficha de cada parcela (o la de la parcela PARCEL)"
    ),
    "folder for a commune's sheets and index.pdf; file for one sheet": (
        "carpeta para las fichas de una comuna y su index.pdf; archivo para una sola ficha"
    ),
    "es or en: the sheets' language (default es), and the messages' (default: the locale's)": (
        "es o en: el idioma de las fichas (por defecto es) y el de los mensajes (por defecto: "
        "el del sistema)"
    ),
    "print what only a commune's own users may read too (history notes, holders' names); "
    "without it the sheets show what everyone may read": (
        "imprimir también lo que solo leen los usuarios de la comuna (notas del historial, "
        "nombres de los titulares); sin esta opción las fichas muestran lo que cualquiera "
        "puede leer"
    ),
    # db
    "The database: the embedded cluster and the schema.": (
        "La base de datos: el clúster integrado y el esquema."
    ),
    "Create (first time) and start the embedded PostgreSQL + PostGIS cluster.": (
        "Crea (la primera vez) y arranca el clúster integrado de PostgreSQL + PostGIS."
    ),
    "Stop the embedded cluster.": "Detiene el clúster integrado.",
    "Where the embedded cluster lives and whether it runs (exit 3 when stopped).": (
        "Dónde está el clúster integrado y si está en marcha (sale con 3 si está detenido)."
    ),
    "Apply pending schema migrations.": "Aplica las migraciones pendientes del esquema.",
    # map
    "Maps as one self-contained HTML file each (work offline).": (
        "Mapas, cada uno en un archivo HTML autónomo (funcionan sin conexión)."
    ),
    "A commune's map (or one analysis' map) as one self-contained HTML file.": (
        "El mapa de una comuna (o el de un análisis) en un archivo HTML autónomo."
    ),
    "HTML file to write (replaced)": "archivo HTML a escribir (se reemplaza)",
    "es or en: the map's language (default es), and the messages' (default: the locale's)": (
        "es o en: el idioma del mapa (por defecto es) y el de los mensajes (por defecto: el del "
        "sistema)"
    ),
    "an analysis map instead, e.g. water-hookups": (
        "en su lugar, el mapa de un análisis, p. ej. water-hookups"
    ),
    "draw what only a commune's own users may read too (each home, residents, notes); "
    "without it the file shows what everyone may read": (
        "dibujar también lo que solo leen los usuarios de la comuna (cada vivienda, residentes, "
        "notas); sin esta opción el archivo muestra lo que cualquiera puede leer"
    ),
    "One analysis' map of a commune as one self-contained HTML file.": (
        "El mapa de un análisis de una comuna en un archivo HTML autónomo."
    ),
    "analysis, e.g. water-hookups": "análisis, p. ej. water-hookups",
    "The national map (communes by state and status, exchanges) as one HTML file.": (
        "El mapa nacional (comunas por estado y situación, intercambios) en un archivo HTML."
    ),
    # users
    "Accounts: tokens for viewers, editors and admins.": (
        "Cuentas: tokens para lectores, editores y administradores."
    ),
    "Create a user and print its token once (only its hash is stored).": (
        "Crea un usuario y muestra su token una sola vez (solo se guarda su hash)."
    ),
    "a name people recognise": "un nombre que la gente reconozca",
    "viewer, editor or admin": "viewer (lector), editor o admin (administrador)",
    "commune code (repeatable) whose features an editor may change and whose members-only "
    "data (each home, residents, notes) the user may read": (
        "código de comuna (repetible) cuyas entidades puede cambiar un editor y cuyos datos "
        "solo para miembros (cada vivienda, residentes, notas) puede leer el usuario"
    ),
    "when the token ends: 90d, 12w, a date (2027-06-30) or never; default "
    "GEO_COMUNA_TOKEN_DAYS (365) days": (
        "cuándo vence el token: 90d (días), 12w (semanas), una fecha (2027-06-30) o never "
        "(nunca); por defecto GEO_COMUNA_TOKEN_DAYS (365) días"
    ),
    "Give a user a new token (printed once); the old one stops working at once.": (
        "Da a un usuario un token nuevo (se muestra una vez); el anterior deja de servir al "
        "instante."
    ),
    "the user's name": "el nombre del usuario",
    "Users, roles, communes, when their tokens expire; revoked ones too.": (
        "Usuarios, roles, comunas y cuándo vencen sus tokens; también los revocados."
    ),
    "Revoke a user's token at once.": "Revoca al instante el token de un usuario.",
    # dem
    "Elevation models (DEMs) per commune, for terrain analyses and hillshades.": (
        "Modelos digitales de elevación (MDE) por comuna, para los análisis del terreno y los "
        "sombreados."
    ),
    "Store a DEM for a commune (in the database: backups hold it).": (
        "Guarda un MDE para una comuna (en la base de datos: los respaldos lo incluyen)."
    ),
    "single-band GeoTIFF in any CRS, elevations in metres": (
        "GeoTIFF de una banda en cualquier SRC, elevaciones en metros"
    ),
    "name to keep it under (default: the file name without suffix); replaces a DEM of that name": (
        "nombre con que guardarlo (por defecto: el del archivo sin sufijo); reemplaza un MDE "
        "de ese nombre"
    ),
    "The DEMs stored (name, CRS, cell size in m, lon/lat bounds), the one analyses use first.": (
        "Los MDE guardados (nombre, SRC, tamaño de celda en m, límites en lon/lat), primero el "
        "que usan los análisis."
    ),
    "Remove one of a commune's DEMs; analyses then use the next one, if any.": (
        "Quita uno de los MDE de una comuna; los análisis usan entonces el siguiente, si lo hay."
    ),
    "the DEM's id (geo-comuna dem list)": "el id del MDE (geo-comuna dem list)",
    "commune code or id (default: all)": "código o id de la comuna (por defecto: todas)",
}


def folded(text: str) -> str:
    """A help text as the catalogue keys it: its blanks and line breaks folded to one space
    (a docstring's lines are wrapped where its source is)."""
    return " ".join(text.split())


def helps(command: Any) -> list[tuple[Any, str]]:
    """Every (object, attribute) holding a help text in ``command``'s tree: each command's
    help and short help, each parameter's help."""
    found = [(command, name) for name in ("help", "short_help") if getattr(command, name, None)]
    for param in command.params:
        if getattr(param, "help", None):
            found.append((param, "help"))
    for sub in getattr(command, "commands", {}).values():
        found.extend(helps(sub))
    return found


def in_spanish(command: Any) -> None:
    """Make ``command``'s tree show its --help in Spanish: every help text with its Spanish
    (an English one missing here stays English), the help option's own line, typer's panel
    titles and click's "Usage:". For the console script only: typer's words are settings of
    its module, so they stay Spanish for the rest of the process. Those are set when a help
    is first formatted: loading typer's rich_utils (and rich) costs a command that shows no
    help ~80 ms."""
    from typer._click.formatting import HelpFormatter

    for owner, name in helps(command):
        setattr(owner, name, SPANISH.get(folded(getattr(owner, name)), getattr(owner, name)))

    class Formatter(HelpFormatter):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            from typer import rich_utils

            for setting, words in FRAME.items():
                setattr(rich_utils, setting, words)
            super().__init__(*args, **kwargs)

        def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
            for english, spanish in USAGE_WORDS:
                args = args.replace(english, spanish)
            super().write_usage(prog, args, USAGE if prefix is None else prefix)

    def each(cmd: Any) -> None:
        context = type("Context", (cmd.context_class,), {"formatter_class": Formatter})
        cmd.context_class = context
        option = cmd.get_help_option(context(cmd))
        if option is not None:
            option.help = HELP_OPTION
        for sub in getattr(cmd, "commands", {}).values():
            each(sub)

    each(command)
    headed(command, "es")


def headed(command: Any, lang: str) -> None:
    """The examples' heading of every command (cli/examples.py writes it in both languages)
    in ``lang`` alone, for the console script, which knows its language."""
    if command.epilog:
        command.epilog = command.epilog.replace(EXAMPLES_BOTH, EXAMPLES[lang])
    for sub in getattr(command, "commands", {}).values():
        headed(sub, lang)
