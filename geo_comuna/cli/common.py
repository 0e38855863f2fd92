"""What every command shares: settings, errors as messages and exit codes, progress, and one
database connection per command."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.abc import MetaPathFinder
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from geo_comuna.errors import GeoComunaError, Said, said
from geo_comuna.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        die(Said(f"invalid settings: {exc}", f"configuración no válida: {exc}"))


#: the language a command asked for with --lang (cli_lang), for its error messages too
_spoken: list[str] = []


def cli_lang(asked: str | None) -> str:
    """The language of what a command prints: its ``--lang``, else the one given before the
    command (``geo-comuna --lang en CMD``), else the locale's (LC_ALL, LC_MESSAGES, LANG:
    English when it is English), else Spanish. Its errors (die) follow."""
    if asked is not None:
        if asked not in ("es", "en"):
            die(
                Said(
                    f"--lang must be es or en, not {asked!r}",
                    f"--lang debe ser es o en, no {asked!r}",
                ),
                2,
            )
        _spoken[:] = [asked]
        return asked
    if _spoken:  # `geo-comuna --lang en analyze ...`: the command's tables were Spanish
        return _spoken[0]
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "en" if value.lower().startswith("en") else "es"
    return "es"


#: --lang as the console script's command line gives it (spoken_from), read before click
#: parses the line
_on_command_line: list[str] = []


def spoken_from(args: list[str]) -> None:
    """Take ``--lang es|en`` from a command line before click parses it, so that a usage
    error (an unknown option, a missing argument) is said in that language too."""
    for at, arg in enumerate(args):
        if arg == "--":
            break
        value = arg.removeprefix("--lang=") if arg.startswith("--lang=") else None
        if arg == "--lang" and at + 1 < len(args):
            value = args[at + 1]
        if value in ("es", "en"):
            _on_command_line[:] = [value]
    _spoken[:] = _on_command_line


def new_command() -> None:
    """Forget an earlier command's --lang (commands run one after another in one process
    under tests and scripts that call the app), but not the command line's own."""
    _spoken[:] = _on_command_line


def _lang_given(value: str | None) -> str | None:
    if value is not None:
        cli_lang(value)
    return value


#: every command's --lang: read before its other parameters (eager), so their errors speak it
Lang = Annotated[
    str | None,
    typer.Option(
        "--lang",
        help="es or en: the language of the messages (default: the locale's, else es)",
        callback=_lang_given,
        is_eager=True,
    ),
]


def group_lang(lang: Lang = None) -> None:
    """The --lang of a group of commands (db, map, users, dem) and of geo-comuna itself, so
    that `geo-comuna db --lang en --help` is said in English, as every command's is."""


def language() -> str:
    """The command's language: its --lang once cli_lang saw it, else the locale's."""
    return _spoken[0] if _spoken else cli_lang(None)


def die(what: str | GeoComunaError, code: int = 1) -> NoReturn:
    """Print why on stderr, in the command's language (a Said or a typed error knows its
    Spanish; other text is printed as it is), and exit with ``code``."""
    lang = language()
    if isinstance(what, GeoComunaError):
        title = what.title_es if lang == "es" else what.code.replace("-", " ")
        message = f"error ({title}): {what.said(lang)}"
        message += "".join(f"\n  - {reason}" for reason in what.listed(lang))
    else:
        message = f"error: {said(what, lang)}"
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


#: errno names in words, for file_trouble
_WHY = {
    "EACCES": ("permission denied", "permiso denegado"),
    "EPERM": ("not permitted", "no permitido"),
    "ENOENT": ("no such file or folder", "no existe el archivo o la carpeta"),
    "EISDIR": ("it is a folder; give a file", "es una carpeta; indique un archivo"),
    "ENOTDIR": ("a part of it is not a folder", "una parte de la ruta no es una carpeta"),
    "EROFS": ("read-only file system", "sistema de archivos de solo lectura"),
    "ENOSPC": ("no space left on the disk", "no queda espacio en el disco"),
}


def file_trouble(exc: OSError) -> Said:
    """What went wrong with a file or folder, naming it: a command's output that cannot be
    written (a read-only folder, a folder given for a file) ended in a Python traceback."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "")
    en, es = _WHY.get(name, (exc.strerror or str(exc), exc.strerror or str(exc)))
    where = exc.filename if exc.filename is not None else ""
    return Said(f"{where}: {en}", f"{where}: {es}") if where else Said(en, es)


class HeldInterrupts:
    """Ctrl-C for a command whose work has a point of no return (a restore's COMMIT): before
    ``hold()`` it interrupts as always; from then on it is only noted (``held``), so the
    command finishes and says what it did instead of stopping without a word. Install it for
    the command's whole length with ``installed()`` (main thread only, as signals are)."""

    def __init__(self) -> None:
        self.holding = False
        self.held = False

    def hold(self) -> None:
        self.holding = True

    def _on_signal(self, signum: int, frame: Any) -> None:
        if not self.holding:
            raise KeyboardInterrupt
        self.held = True

    @contextmanager
    def installed(self) -> Iterator[HeldInterrupts]:
        import signal
        import threading

        ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # run in the background
        if ignored or threading.current_thread() is not threading.main_thread():
            yield self  # no Ctrl-C reaches this command, or not this thread
            return
        before = signal.signal(signal.SIGINT, self._on_signal)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, before)


def progress(message: str) -> None:
    """A step of long work, on stderr, in the command's language when it is a Said."""
    typer.secho(f"  … {said(message, language())}", err=True, fg=typer.colors.BLUE)


def tell(text: str, err: bool = False, fg: str | None = None) -> None:
    """Print a line for people, in the command's language when it is a Said."""
    typer.secho(said(text, language()), err=err, fg=fg)


class _Unseen(MetaPathFinder):
    """Refuses to find the packages named, as if they were not installed."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"{fullname!r} is kept unloaded", name=fullname)


@contextmanager
def unseen(*names: str) -> Iterator[None]:
    """Inside, the packages ``names`` cannot be imported unless already loaded, as if not
    installed. For libraries that load an optional dependency whenever it is installed, for
    features a command does not use: ``import pyogrio`` loads pandas and geopandas for its
    GeoDataFrame functions, which the import command (Arrow from GDAL to COPY) never calls.
    Letting them load cost that command 0.35-0.46 s of start-up and 30-40 MB: 1.04x of
    ogr2ogr's time in its set of runs, 0.94-0.99x with them kept out (bench/README.md, "The
    import engine in its own room")."""
    finder = _Unseen(tuple(n for n in names if n not in sys.modules))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def run(work: Callable[[Any], Awaitable[T]], settings: Settings) -> T:
    """Run ``work(conn)`` on one connection; typed errors become a message and exit 2."""
    from psycopg.errors import QueryCanceled
    from psycopg.pq import TransactionStatus

    from geo_comuna.db import migrate
    from geo_comuna.db.pool import connect
    from geo_comuna.work import Limits, lending
    from geo_comuna.work import scope as limits_scope

    async def main() -> T:
        conn = await connect(settings)

        @asynccontextmanager
        async def spare() -> AsyncIterator[Any]:
            """A second connection for statements that can run side by side, as a request
            has (work.spare_connection); none while ``conn`` is in a transaction, whose
            writes a second connection would not see."""
            if conn.info.transaction_status != TransactionStatus.IDLE:
                yield None
                return
            other = await connect(settings)
            try:
                yield other
            finally:
                await other.close()

        try:
            await migrate.upgrade(conn)
            with limits_scope(Limits.of(settings), None), lending(spare):
                return await work(conn)  # no deadline for one's own command
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except GeoComunaError as exc:
        die(exc, 2)
    except OSError as exc:  # a file or folder the command cannot read or write
        die(file_trouble(exc), 2)
    except QueryCanceled:
        ms = settings.statement_timeout_ms
        die(
            Said(
                f"a query took longer than the database allows one ({ms} ms); give this "
                f"command more time, e.g. GEO_COMUNA_STATEMENT_TIMEOUT_MS={ms * 10}",
                f"una consulta tardó más de lo que la base de datos permite a una ({ms} ms); "
                f"dele más tiempo a este comando, p. ej. GEO_COMUNA_STATEMENT_TIMEOUT_MS={ms * 10}",
            ),
            2,
        )
