"""Bounded work per request: the limits of Settings, a bounded pool for CPU-heavy steps with a
deadline, and a killable process for the one GEOS step no input size bounds (MakeValid).

A request runs inside ``scope(limits, workers, seconds, cache)`` (the app opens one per
request, the CLI one per command, without workers, deadline or cache). Inside it:

- ``limits()`` gives the request's Limits (vertices per geometry, features per write, DEM and
  raster-window cells...), read where the work is sized, so no parameter threads them through;
- ``await cpu(fn, *args)`` runs a CPU-heavy step (parsing and validating a write, an analysis'
  computation, a hillshade, a report's figures) on one of the Workers' threads, never on the
  event loop, with at most ``size`` such steps at once; a step still queued or running at the
  request's deadline makes the request a 503 (TooSlow) and a queued one never starts;
- ``isolated(fn, *args)`` runs ``fn`` in a child process that is killed at the deadline.
  GEOS MakeValid takes minutes on a polygon of a few thousand vertices that crosses itself
  everywhere (the work grows with the crossings, not the vertices), and a thread cannot be
  stopped, so repairs run there;
- ``cache()`` is the app's cache of expensive answers per layer version (db/versions.py);
- ``spare_connection()`` gives a request a second pooled connection when one is to spare, and
  ``beside(step)`` runs a statement on it while the request's own connection does other work;
- ``await fetched(cur)`` gives a big result's rows with the event loop let free between
  pieces: psycopg makes Python rows on the loop.

Outside any scope (tests calling services directly) the defaults of Settings apply, CPU steps
run in a plain worker thread and nothing has a deadline.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import ctypes
import dataclasses
import functools
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from geo_comuna.child import IDLE_SECONDS, MEMORY_BYTES
from geo_comuna.errors import InvalidFile, Said, TooLarge, TooSlow
from geo_comuna.settings import Settings

if TYPE_CHECKING:
    from geo_comuna.db.versions import VersionedCache

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """How much one request may ask for; each is a Settings field of the same name."""

    max_vertices_per_geometry: int
    max_parts_per_geometry: int
    max_features_per_write: int
    max_dem_cells: int
    max_dem_bytes: int
    max_raster_window_cells: int
    compute_seconds: float
    heavy_requests: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(**{name: getattr(settings, name) for name in cls.__dataclass_fields__})


@functools.cache
def default_limits() -> Limits:
    """Settings' defaults, not the environment's (outside a scope nothing was configured)."""
    return Limits.of(Settings.model_construct())


#: the Workers whose CPU slot the current thread holds (isolated() lends it while it waits)
_holding = threading.local()


class Workers:
    """At most ``size`` CPU-heavy steps computing at once, on threads of their own (the event
    loop and anyio's threads for blocking I/O stay free). A step waiting for a child process
    (isolated) gives its slot back meanwhile, so a repair in progress takes no CPU slot."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        #: child processes at once (each may take a CPU for its whole deadline)
        self.children = threading.BoundedSemaphore(size)
        # more threads than slots: the extra ones only ever wait, for a slot or for a child
        self._pool = ThreadPoolExecutor(4 * size, thread_name_prefix="geo-comuna-cpu")

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` on a worker, in the caller's context (limits, deadline)."""
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(
            self._pool, context.run, self._in_slot, fn, *args
        )

    def _in_slot(self, fn: Callable[..., T], *args: Any) -> T:
        with self._slots:
            _holding.workers = self
            try:
                return fn(*args)
            finally:
                _holding.workers = None

    @contextmanager
    def lent(self) -> Iterator[None]:
        """The current thread's slot, given back while it only waits."""
        self._slots.release()
        try:
            yield
        finally:
            self._slots.acquire()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Scope:
    limits: Limits
    workers: Workers | None
    deadline: float | None  # time.monotonic() by which the request's work must be done
    cache: VersionedCache | None = None  # expensive answers kept per layer version
    shared: bool = False  # the deadline is a share of the request's (share())
    #: the Settings field the deadline's seconds come from (said when it is passed)
    setting: str = "compute_seconds"

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def restart(self) -> None:
        """Give the work its whole time again from now: a request's body has just come, the
        time it took to send was not the work's (found from outside: an upload sent at 5 KB/s
        for 36 s found its import's queries cancelled at once)."""
        if self.deadline is not None:
            object.__setattr__(self, "deadline", time.monotonic() + self.limits.compute_seconds)

    def too_slow(self) -> TooSlow:
        """What a step stopped at this scope's deadline says."""
        return _too_slow(self.limits.compute_seconds, self.shared, self.setting)


_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "geo_comuna_work", default=None
)


@contextmanager
def scope(
    limits: Limits,
    workers: Workers | None,
    seconds: float | None = None,
    cache: VersionedCache | None = None,
    *,
    setting: str = "compute_seconds",
) -> Iterator[Scope]:
    """The work of one request (or command): its limits, its workers, ``seconds`` to do it
    (Settings' ``setting``: a commune package's build has package_seconds), and the app's
    cache of expensive answers."""
    deadline = None if seconds is None else time.monotonic() + seconds
    current = Scope(limits, workers, deadline, cache, setting=setting)
    token = _scope.set(current)
    try:
        yield current
    finally:
        _scope.reset(token)


@contextmanager
def caching(cache: Any) -> Iterator[Scope]:
    """The current scope (limits, workers, deadline) with ``cache`` in place of its own: a
    piece of work that asks for the same answers many times (a package's maps and report)
    keeps them in a cache of its own. ``cache`` has VersionedCache's get_or_compute."""
    cached = dataclasses.replace(_scope.get() or Scope(default_limits(), None, None), cache=cache)
    token = _scope.set(cached)
    try:
        yield cached
    finally:
        _scope.reset(token)


#: opens a second connection for the current request (api/deps.py sets it as it opens the
#: request's own); unset outside the API and where a request's connection is not the pool's
_spare: contextvars.ContextVar[Callable[[], AbstractAsyncContextManager[Any]] | None] = (
    contextvars.ContextVar("geo_comuna_spare_connection", default=None)
)


@contextmanager
def lending(opener: Callable[[], AbstractAsyncContextManager[Any]]) -> Iterator[None]:
    """Within it, spare_connection() opens connections with ``opener``."""
    token = _spare.set(opener)
    try:
        yield
    finally:
        _spare.reset(token)


@asynccontextmanager
async def spare_connection() -> AsyncIterator[Any]:
    """A second connection for this request's statements that can run side by side (two
    backends, two CPUs), or None: then they run one after the other on its own connection.
    Each statement sees its own snapshot either way, as statements in autocommit do."""
    opener = _spare.get()
    if opener is None:
        yield None
        return
    async with opener() as conn:
        yield conn


@asynccontextmanager
async def beside(step: Awaitable[T]) -> AsyncIterator[asyncio.Future[T]]:
    """``step`` (a statement on the spare connection, or CPU work on a worker) running beside
    the block's own; the block awaits it for its result (its error then rises there, as
    itself). Whatever the block does not wait for is cancelled, and waited for, before the
    block ends: the spare connection never goes back to its pool with a statement running."""
    task = asyncio.ensure_future(step)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # seen: the block's own error, or its early end, is what counts


#: rows fetched() makes at a time: ~20 ms of the event loop for candidates with their arrays
ROWS_AT_ONCE = 5_000


async def fetched(cur: Any) -> list[Any]:
    """Every row of ``cur``'s result (an async cursor that has executed), made ROWS_AT_ONCE
    at a time with the event loop let free in between. psycopg makes the rows on the loop:
    66,666 land recovery candidates with their arrays of roads held it 0.26 s in one
    fetchall(), during which the server process answered no other request."""
    rows: list[Any] = []
    while piece := await cur.fetchmany(ROWS_AT_ONCE):
        rows += piece
        await asyncio.sleep(0)
    return rows


def limits() -> Limits:
    current = _scope.get()
    return default_limits() if current is None else current.limits


def remaining() -> float | None:
    """Seconds left before the request's deadline; None without one."""
    current = _scope.get()
    return None if current is None else current.remaining()


def cache() -> VersionedCache | None:
    """The app's cache of answers per layer version; None outside a request (the CLI)."""
    current = _scope.get()
    return None if current is None else current.cache


#: what takes the time a Settings field gives, in each language
_TAKING = {
    "compute_seconds": ("a request", "una petición"),
    "package_seconds": ("a package", "un paquete"),
}


def _too_slow(
    seconds: float | None, shared: bool = False, setting: str = "compute_seconds"
) -> TooSlow:
    """What a step stopped at a deadline says: the request's (or the package's: ``setting``),
    or its share of it."""
    budget = f"{seconds:g} s" if seconds else "its time"
    budget_es = f"{seconds:g} s" if seconds else "el tiempo asignado"
    who, who_es = _TAKING[setting]
    named = f"GEO_COMUNA_{setting.upper()}"
    if shared:  # stopped at its share (share()): the request itself goes on
        return TooSlow(
            Said(
                f"it did not finish in its share of the {budget} {who} may take here; "
                f"the rest was left to the other parts of the answer ({named})",
                f"no terminó en su parte de los {budget_es} que puede durar {who_es} aquí; "
                f"el resto quedó para las demás partes de la respuesta ({named})",
            )
        )
    return TooSlow(
        Said(
            f"the computation took longer than {budget}, the most {who} may take here "
            f"({named}); narrow it (a smaller commune, fewer features, coarser parameters) or "
            "try when the server is less busy",
            f"el cálculo superó {budget_es}, lo máximo que puede durar {who_es} aquí "
            f"({named}); acótelo (una comuna más pequeña, menos entidades, parámetros menos "
            "finos) o inténtelo cuando el servidor esté menos ocupado",
        )
    )


async def cpu(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` off the event loop: on the scope's workers within its
    deadline."""
    call = functools.partial(fn, *args, **kwargs)
    current = _scope.get()
    if current is None or current.workers is None:
        return await asyncio.to_thread(call)
    remaining = current.remaining()
    if remaining is not None and remaining <= 0:
        raise current.too_slow()
    future = current.workers.submit(call)
    try:
        return await asyncio.wait_for(future, remaining)
    except TimeoutError:  # wait_for cancelled the future: a queued step never starts
        raise current.too_slow() from None


@contextmanager
def share(parts: int) -> Iterator[None]:
    """The current scope with its deadline brought nearer: the work inside gets 1/``parts``
    of the time left, so that one slow piece of several (a report's analyses, one after
    another) leaves the others their time."""
    current = _scope.get()
    left = None if current is None else current.remaining()
    if left is None or parts <= 1:
        yield
        return
    token = _scope.set(
        dataclasses.replace(
            current, deadline=time.monotonic() + max(left, 0.0) / parts, shared=True
        )
    )
    try:
        yield
    finally:
        _scope.reset(token)


def in_shares(items: list[T]) -> Iterator[T]:
    """``items`` one after another, the work done for each within an equal share of the time
    left when it starts (share()): the first of four gets a quarter, the last whatever the
    others left."""
    for i, item in enumerate(items):
        with share(len(items) - i):
            yield item


async def within_deadline(step: Coroutine[Any, Any, T]) -> T:
    """``step`` (a piece of work of several statements and CPU steps, such as an analysis)
    stopped at the scope's deadline: the request is then a 503 (TooSlow), and a statement
    still running is cancelled in the database (psycopg asks the server when its task is
    cancelled). A heavy request's connection already bounds each statement by the time left
    when the request took it (api/deps.py); this bounds their sum, which ran to 54 s of
    statements on a 20 s budget for a commune of 200,000 parcels."""
    current = _scope.get()
    remaining = None if current is None else current.remaining()
    if remaining is None:
        return await step
    if remaining <= 0:
        step.close()  # never awaited: no warning that it was not
        raise current.too_slow()
    deadline = asyncio.timeout(remaining)
    try:
        async with deadline:
            return await step
    except TimeoutError:
        if not deadline.expired():  # a timeout of the step's own
            raise
        raise current.too_slow() from None


# --- a killable process -----------------------------------------------------------------------

#: what a child process that ended without an answer (out of memory, killed) leaves to say
NO_ANSWER = Said(
    "the computation's process ended without an answer; try again",
    "el proceso del cálculo terminó sin dar respuesta; inténtelo de nuevo",
)
#: what a stopped child leaves its caller to say so before the request's own deadline (s):
#: 0.25 s was once too little in a full run of the tests on two busy CPUs (the request's 503
#: came before the repair's 422 naming the feature)
_MARGIN = 0.5


def isolated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a child process (geo_comuna/child.py), killed if it is not done within
    the request's time left (less a margin, so that the caller can still say which input was
    too hard) or Limits.compute_seconds, whichever is less; blocking, so call it from a worker.
    ``fn``, its arguments and its result must pickle (shapely geometries do). Starting the
    child costs ~0.2 s: for rare, unbounded work only."""
    current = _scope.get()
    until = time.monotonic() + limits().compute_seconds
    if current is not None and current.deadline is not None:
        until = min(until, current.deadline - _MARGIN)
    shared = current is not None and current.shared
    holder = getattr(_holding, "workers", None)
    if holder is None:  # the CLI, an import's own thread: one child at a time anyway
        return _in_child(fn, args, until, shared)
    with holder.lent():
        if not holder.children.acquire(timeout=max(until - time.monotonic(), 0.0)):
            raise _too_slow(limits().compute_seconds, shared)
        try:
            return _in_child(fn, args, until, shared)
        finally:
            holder.children.release()


def _spawn(*preload: str) -> subprocess.Popen:
    """A child process (geo_comuna/child.py) importing ``preload`` while it waits for work."""
    return subprocess.Popen(
        [sys.executable, "-m", "geo_comuna.child", *preload],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _in_child(fn: Callable[..., T], args: tuple, until: float, shared: bool) -> T:
    child = _spawn()
    try:
        out, _ = child.communicate(
            pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL),
            timeout=max(until - time.monotonic(), 0.0),
        )
    except subprocess.TimeoutExpired:
        raise _too_slow(limits().compute_seconds, shared) from None
    finally:
        _end(child)  # communicate() leaves the pipes open on a timeout
    if not out:  # it died without an answer (out of memory, killed)
        raise TooSlow(NO_ANSWER)
    ok, value = pickle.loads(out)  # noqa: S301 (our own child's answer)
    if isinstance(value, MemoryError):  # past child.MEMORY_BYTES: the input's fault
        most = f"{MEMORY_BYTES / 2**30:g} GB"
        raise TooLarge(
            Said(
                f"the computation needs more than {most} of memory, the most it may take here",
                f"el cálculo necesita más de {most} de memoria, lo máximo que puede usar aquí",
            )
        )
    if not ok:
        raise value
    return value


class Streaming:
    """``fn(*args)``, a reader of a file, in a child process (geo_comuna/child.py) that answers
    in pieces (its function returns child.Pieces): ``first`` is its first answer, ``next()``
    each next piece (None after the last). Each answer is awaited at most
    Limits.compute_seconds from when it is asked for, the first one longer by the file's
    ``size`` (bytes) at READ_BYTES_PER_SECOND: a reader opening a GeoJSON reads it whole to
    count its features. A child that takes longer is killed and TooSlow raised. So a reader
    no check bounds (GDAL on an uploaded file) holds no thread past that, and a reader that
    crashes takes only its child down: the file is refused (InvalidFile). Both say ``name``
    (the file's) and ``advice`` (what to do with it); ``again``: the file is being read a
    second time. A reader waits for one of _readers()' slots at most compute_seconds (then
    TooSlow: the server is busy). An exception in the child is raised here. ``close()`` kills
    a child still running. Blocking: call it from a thread."""

    def __init__(
        self,
        name: str,
        advice: Said,
        fn: Callable[..., Any],
        *args: Any,
        again: bool = False,
        size: int = 0,
    ) -> None:
        self._seconds = limits().compute_seconds
        first = self._seconds + size / READ_BYTES_PER_SECOND
        self._slow = _reading_slow(name, again, advice, first)
        self._broke = Said(
            f"the reading of {name} stopped without an answer: the file is malformed ({advice})",
            f"la lectura de {name} se detuvo sin dar respuesta: el archivo está mal formado "
            f"({advice.es})",
        )
        most = f"{MEMORY_BYTES / 2**30:g} GB"
        self._greedy = Said(
            f"reading {name} needs more than {most} of memory, the most a reader may take "
            f"here: the file is refused ({advice})",
            f"leer {name} necesita más de {most} de memoria, lo máximo que puede usar una "
            f"lectura aquí: se rechaza el archivo ({advice.es})",
        )
        self._held = False
        if not _readers().acquire(timeout=self._seconds):
            raise TooSlow(
                Said(
                    f"the server is reading other uploads (waited {self._seconds:g} s for its "
                    f"turn to read {name}); try again shortly",
                    f"el servidor está leyendo otros archivos (esperó {self._seconds:g} s su "
                    f"turno para leer {name}); inténtelo de nuevo en un momento",
                )
            )
        self._held = True
        try:
            self._child = _SPARES.take()
        except BaseException:
            self._release()
            raise
        self._pipe = _TimedPipe(self._child.stdout)
        try:
            with self._child.stdin as stdin:
                stdin.write(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
            ok, self.first = self._answer(first)
        except BaseException:
            self.close()
            raise
        self._slow = _reading_slow(name, again, advice, self._seconds)  # each next piece's
        if not ok:
            self.close()
            raise self._said(self.first)
        self._done = False

    def _answer(self, seconds: float | None = None) -> tuple[Any, Any]:
        self._pipe.until = time.monotonic() + (seconds or self._seconds)
        try:
            return pickle.load(self._pipe)  # noqa: S301 (our own child's answer)
        except TimeoutError:
            self.close()
            raise TooSlow(self._slow) from None
        except (EOFError, pickle.UnpicklingError):
            self.close()
            if self._child.returncode == -signal.SIGKILL:  # out of memory, or stopped
                raise TooSlow(NO_ANSWER) from None
            raise InvalidFile(self._broke) from None

    def next(self) -> Any | None:
        if self._done:
            return None
        kind, value = self._answer()
        if kind == "piece":
            return value
        self._done = True
        self.close()
        if kind == "error":
            raise self._said(value)
        return None

    def _said(self, exc: BaseException) -> BaseException:
        """The child's exception, but running out of its memory (child.MEMORY_BYTES) said as
        a refusal of the file, not a server error."""
        if not isinstance(exc, MemoryError):
            return exc
        return TooLarge(self._greedy)

    def close(self) -> None:
        _end(self._child)
        self._release()

    def __del__(self) -> None:  # one nobody closed (a bug) still frees its process and slot
        if getattr(self, "_held", False):
            self.close()

    def _release(self) -> None:
        if self._held:
            self._held = False
            _readers().release()


#: how fast a reader's first answer must come, besides Limits.compute_seconds: GDAL reads a
#: GeoJSON whole twice before its first features (its count, then the features), ~7.6 s for
#: 163 MB alone, 19 s with six such uploads on two CPUs (found from outside: four of six
#: valid files were refused at a flat 20 s)
READ_BYTES_PER_SECOND = 4 * 2**20


@functools.cache
def _readers() -> threading.BoundedSemaphore:
    """Readers in child processes at once, in this process: one per heavy request (an
    import holds its reader while it waits for the layer and writes), and one per CPU for
    the short ones (a sync's package, a DEM, a photo). Each takes ~150-370 MB as a rule and
    at most child.MEMORY_BYTES. (At one per CPU alone, four imports queued for one layer
    left two waiting 20 s for a reader, refused.)"""
    return threading.BoundedSemaphore(limits().heavy_requests + max(2, os.cpu_count() or 1))


class _Spares:
    """Reader processes started ahead, one at a time: Python and the readers' libraries
    (pyarrow, GDAL) take ~0.4 s to load, which every upload paid before its first byte was
    read. The first reader is started when it is wanted, with a spare behind it; a spare
    unused for child.IDLE_SECONDS ends, so an idle server holds no extra process (a thread
    waits for it, so it leaves no zombie behind: found from outside), and one still waiting
    when the server ends is ended with it."""

    #: what a spare loads while it waits (the rest of a reader's modules come with its work)
    PRELOAD = ("geo_comuna.io.reading",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: tuple[subprocess.Popen, float] | None = None

    def take(self) -> subprocess.Popen:
        with self._lock:
            spare, self._spare = self._spare, (self._start(), time.monotonic())
        if spare is not None:
            child, started = spare
            # a spare near its idle end may be gone by the time it is written to
            if child.poll() is None and time.monotonic() - started < IDLE_SECONDS - 10:
                return child
            _end(child)
        return self._start()

    def pids(self) -> set[int]:
        with self._lock:
            return set() if self._spare is None else {self._spare[0].pid}

    def close(self) -> None:
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            _end(spare[0])

    def _start(self) -> subprocess.Popen:
        child = _spawn(*self.PRELOAD)
        threading.Thread(target=child.wait, name="geo-comuna-reaper", daemon=True).start()
        return child


def _end(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            pipe.close()


_SPARES = _Spares()
atexit.register(_SPARES.close)


def spare_readers() -> set[int]:
    """The process ids of the reader started ahead (none, or one)."""
    return _SPARES.pids()


def _reading_slow(name: str, again: bool, advice: Said, seconds: float) -> Said:
    return Said(
        f"reading {name}{' again' if again else ''} took longer than {seconds:.3g} s, the most "
        f"one piece of a file may take here: the file is refused ({advice}), or try when the "
        "server is less busy",
        f"leer {name}{' de nuevo' if again else ''} tardó más de {seconds:.3g} s, lo máximo que "
        f"puede tardar aquí una parte de un archivo: se rechaza el archivo ({advice.es}), o "
        "inténtelo cuando el servidor esté menos ocupado",
    )


def in_child(name: str, advice: Said, size: int, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, a reader of the file ``name`` of ``size`` bytes answering at once, in a
    child process (Streaming)."""
    stream = Streaming(name, advice, fn, *args, size=size)
    stream.close()
    return stream.first


class _TimedPipe:
    """A child's stdout read for pickle.load, each read failing with TimeoutError once
    ``until`` (time.monotonic()) has passed."""

    def __init__(self, pipe: Any) -> None:
        self._fd, self.until = pipe.fileno(), 0.0

    def read(self, size: int = -1) -> bytes:
        parts, wanted = [], size
        while wanted:
            left = self.until - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise TimeoutError
            part = os.read(self._fd, wanted if wanted > 0 else 1 << 20)
            if not part:
                break
            parts.append(part)
            wanted -= len(part) if wanted > 0 else 0
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readline(self) -> bytes:  # pickle asks for it; protocol 5 never calls it
        raise pickle.UnpicklingError("no lines in a child's answer")


@functools.cache
def _malloc_trim() -> Callable[[], Any] | None:
    """glibc's malloc_trim, looked up once, when first wanted (not at every start), among the
    C functions the process has already loaded. None where the C library has no such call
    (musl, macOS): the memory is then only reused."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


def release_memory() -> None:
    """Give the memory freed by big work back to the system. Python frees a request's
    objects, but the C allocator keeps their pages for later: a worker that served
    BENCH-B-0001's package stayed at 739 MB resident while idle (431 MB with this), and the
    package's pages, each built on what the one before left, peaked at 826-827 MB (651-698 MB
    with this between them). Called by api/fairness.py when no heavy request runs, and by the
    package between its steps."""
    trim = _malloc_trim()
    if trim is not None:
        trim()
