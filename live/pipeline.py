"""The threads: capture -> forward -> (window or headless consumer).

* A capture thread opens the source, reads frames into a :class:`Slot` and
  releases the source when it stops (the thread that opens a capture
  releases it). A live source (camera, stream, a video paced in real time)
  never waits: the newest frame wins and older ones count as dropped. A
  video at ``--pace max`` waits for the forward thread instead, so every
  frame is processed.
* The capture thread also preprocesses each frame into the network's input
  (``Frame.blob``), so that this overlaps the previous frame's forward pass.
* A forward thread takes the newest frame, runs one forward pass with the
  tapped layer and, when the consumer wants a result (:meth:`Slot.wanted`:
  always, unless it paces the slot; a window does, and then wants one once
  it took the last and its :meth:`Slot.ready_from` time has come),
  builds the uint8 grid, what the network sees and the rest of a
  :class:`Result`, and publishes it into a second slot, newest wins. A frame
  nobody would look at costs the forward pass alone (``dropped_results``
  counts it). Headless with nothing that needs each result (no recording,
  no units: :attr:`Pipeline.final_only`), only the first frame's result and
  the last one's are made.
* With units on (:meth:`Pipeline.enable_units`; the window turns them on),
  the forward thread also offers each result to a ``live-units`` thread
  (:mod:`live.unitfeed`) that reduces the shown layer's units: top-k frames
  and statistics. It never waits for it; a busy units thread skips frames.
* With layers pinned (``View.pins``, at most :data:`MAX_PINS`), the same
  forward pass taps every pinned layer and the forward thread builds each
  one's grid with its own normalization (``Result.pinned``).
* On request (:meth:`Pipeline.request_profile`) the forward thread profiles
  the network per layer (:mod:`live.profile`) on the newest frame's blob and
  publishes a :class:`Timing`; nothing is profiled otherwise.
* With compare mode on (:meth:`Pipeline.set_compare`), the forward thread
  runs each blob through a second configuration too and puts the shown
  layer's difference map in ``Result.difference``; off, it costs nothing.
* The consumer (the window, woken by :attr:`Pipeline.on_publish` and showing
  at most 30 results a second, or :func:`run_headless`) pulls the newest
  result; nothing here ever waits on it (except a headless replay at
  ``--pace max``, which hands every result over).

Switching layer, normalization, target or source is a request the worker
threads apply between frames; :attr:`Pipeline.status` says what is going on:
a :class:`Status`, one :class:`Phase` from a fixed set plus a message for
people. Consumers branch on the phase, never on the message's words.

What crosses threads, and how:

* ``frames`` and ``results``: :class:`Slot` objects (a condition variable
  each); a :class:`~live.frames.Frame` or :class:`~live.frames.Result` is
  immutable once put there, so the taker needs no copy.
* ``status`` and ``error``: written by the worker threads, read by anyone.
  Each write replaces the whole value (a frozen :class:`Status`, a string),
  and one reference assignment is atomic in Python, so a reader sees an old
  or a new value, never half of one.
* ``view`` and ``model``: replaced whole (``set_view`` from any thread, a
  target switch in the forward thread); the forward thread reads each once
  per frame, so a frame is computed for one view and one model.
* requests (a target switch) go to the forward thread through a
  ``SimpleQueue``; a source switch waits in ``_source_request`` under
  ``_lock``, with the threads' running flags.
* ``stats``: :class:`~live.stats.PipelineStats` has its own lock.

Faults do not end a run:

* A live source (camera or stream) whose read fails is reopened with
  exponential backoff (:data:`RECONNECT_FIRST_S` doubling to
  :data:`RECONNECT_MAX_S`) while the status says ``reconnecting to ...``;
  each attempt runs in its own short-lived thread so that stopping or
  switching source never waits for a slow connect. The outage is counted in
  the stats (``gaps``, ``gap_s``); the last result stays in the results slot.
  Files and folders are not reopened: they end or loop as before.
* A frame whose preprocessing or forward pass fails (``cv2.error`` or a
  :class:`LiveError`) is logged with its number and counted (``errors``);
  the next frame goes on. A run that can never produce a result ends:
  with ``max_failures`` set (:func:`run_headless` sets
  :data:`MAX_FAILED_IN_A_ROW`), that many failed frames in a row stop the
  pipeline, :attr:`Pipeline.gave_up` saying why (a folder slideshow counts
  each picture once, however often it is shown).
* Undecodable frames of a damaged video are passed over by the source and
  counted (``skipped_frames``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import cv2
import numpy as np

from live import explain
from live import profile as profiling
from live.cam import CamResult, Smoother
from live.engines import cv_message
from live.errors import LiveError, UsageError
from live.frames import Difference, Frame, PinnedGrid, Result, View
from live.maps import GridBuilder, GridOptions
from live.model import Model, Settings
from live.sources import Source, SourceOptions
from live.stats import PipelineStats
from live.unitfeed import UnitsFeed
from live.units import UnitOptions

log = logging.getLogger("live.pipeline")
T = TypeVar("T")
JOIN_TIMEOUT_S = 1.0
RECONNECT_KINDS: tuple[str, ...] = ("stream", "camera")  # sources reopened when a read fails mid-run
RECONNECT_FIRST_S = 0.5  # wait before the first reconnect attempt; doubles after each failed one
RECONNECT_MAX_S = 8.0  # the longest wait between two attempts
POLL_S = 0.1  # how often a waiting capture thread looks for a stop or a source switch
MAX_FAILED_IN_A_ROW = 50  # headless: this many frames failing in a row end the run (it can never produce a result)
MAX_PINS = 4  # layers pinned at once (their grids side by side, one forward pass)
PROFILE_FRAMES = 5  # forward passes one window profile averages (the forward thread is busy for that long)


def check_pins(pins: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``pins`` without repeats, in order; at most :data:`MAX_PINS`.

    Raises:
        UsageError: more than :data:`MAX_PINS` layers.
    """
    unique = tuple(dict.fromkeys(pins))
    if len(unique) > MAX_PINS:
        raise UsageError(f"at most {MAX_PINS} layers can be pinned at once ({len(unique)} asked for); unpin one first")
    return unique


@dataclasses.dataclass(frozen=True)
class Timing:
    """A per-layer profile made on request in the forward thread (the window's timing panel).

    Attributes:
        seq: 1 for the first profile, then 2, ...
        profile: the :class:`live.profile.Profile`, or None when it failed.
        error: why it failed, or None.
    """

    seq: int
    profile: profiling.Profile | None
    error: str | None = None


class Comparer(Protocol):
    """What compare mode runs per frame (:class:`live.compare.LiveCompare`), in the forward thread."""

    @property
    def label(self) -> str: ...

    first_divergent: str | None
    checked: bool
    note: str | None

    def difference(
        self, blob: np.ndarray, layer: str, a: np.ndarray
    ) -> tuple[np.ndarray, float | None, float | None]: ...


def _said(exc: Exception) -> str:
    """A failure in one line: cv2's useful line of a ``cv2.error``, else the exception's own message."""
    return cv_message(exc) if isinstance(exc, cv2.error) else str(exc)


def is_replay(source: Source) -> bool:
    """A file replayed as fast as possible: its frames wait for the forward thread, none dropped."""
    return getattr(source, "pace", None) == "max"


class Slot(Generic[T]):
    """A one-value mailbox where the latest value wins.

    ``put`` replaces the value; a value replaced before anyone took it counts
    as dropped. ``take`` waits for a value newer than the caller last saw.
    ``close`` wakes every waiter; a closed slot accepts nothing more.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: T | None = None
        self.seq = 0
        self._taken = 0
        self.dropped = 0
        self.closed = False
        self._ready_at: float | None = None  # time.perf_counter() from which a pacing taker wants a new value

    def wait_taken(self, timeout: float | None = None) -> bool:
        """Wait until the current value was taken (or the slot closed); False on timeout or closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._taken == self.seq or self.closed, timeout)
            return self._taken == self.seq and not self.closed

    def put(self, value: T) -> bool:
        """Publish ``value``; False when the slot is closed."""
        with self._cond:
            if self.closed:
                return False
            if self._taken < self.seq:
                self.dropped += 1
            self._value = value
            self.seq += 1
            self._cond.notify_all()
            return True

    def take(self, after: int = -1, timeout: float | None = None) -> tuple[int, T] | None:
        """Wait for a value with sequence number > ``after`` (default: any untaken one)."""
        with self._cond:
            floor = self._taken if after < 0 else after
            if not self._cond.wait_for(lambda: self.seq > floor or self.closed, timeout):
                return None
            if self.seq <= floor or self._value is None:
                return None
            self._taken = self.seq
            self._cond.notify_all()
            return self.seq, self._value

    def ready_from(self, t: float) -> None:
        """Pace the slot: the taker wants no new value before ``time.perf_counter()`` reaches ``t`` (a display's pace).

        Until a taker first calls this, every value is wanted (newest wins, a
        :meth:`peek` sees the newest); from then on, see :meth:`wanted`.
        """
        with self._cond:
            self._ready_at = t

    def wanted(self) -> bool:
        """Whether a new value would be taken: always, unless paced; paced, once the last one was taken and the
        :meth:`ready_from` time has come.

        A producer asks before making what only a taker uses (a result's grid):
        a value nobody would take before the next one comes is not worth making.
        """
        with self._cond:
            ready_at = self._ready_at
            return ready_at is None or (self._taken == self.seq and time.perf_counter() >= ready_at)

    def skip(self) -> None:
        """Count a value the producer did not make because nobody wanted it (as :meth:`put` counts a replaced one)."""
        with self._cond:
            self.dropped += 1

    @property
    def pending(self) -> bool:
        """Whether a value is waiting that nobody took yet."""
        with self._cond:
            return self.seq > self._taken

    def peek(self) -> tuple[int, T | None]:
        """The newest value and its sequence number, without taking it."""
        with self._cond:
            return self.seq, self._value

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def keep(self, value: T) -> None:
        """Make ``value`` the newest for :meth:`peek` alone: nobody is woken, no drop is counted, closed or not."""
        with self._cond:
            self._value = value
            self.seq += 1


class _Reopen:
    """One attempt to reopen a source, run in its own thread so that the capture thread can stop at any time.

    The source belongs to the attempt until :meth:`wait` says it is done. A
    caller that stops waiting earlier calls :meth:`abandon`; the attempt's
    thread then releases the source itself once its open returns (the thread
    that opens a capture releases it).
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        self.error: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="live-reconnect", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.source.open()
        except LiveError as exc:
            self.error = str(exc)
        except Exception as exc:  # a fault in a reopen must not pass silently
            log.exception("reopening %s failed", self.source.name)
            self.error = f"reopening failed: {exc}"
        with self._lock:
            self._done.set()
            abandoned = self._abandoned
        if abandoned:
            self.source.close()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the attempt to finish; True when it has (see :attr:`error`)."""
        return self._done.wait(timeout)

    def abandon(self) -> bool:
        """Leave the source to the attempt's thread; False when the attempt had already finished (caller owns it)."""
        with self._lock:
            if self._done.is_set():
                return False
            self._abandoned = True
            return True


class Phase(enum.Enum):
    """What the pipeline is doing; the window and the tests branch on this, never on message text."""

    STARTING = "starting"
    OPENING = "opening"  # opening a source
    RUNNING = "running"
    COMPILING = "compiling"  # the first pass on an OpenCL target compiles kernels
    SWITCHING = "switching"  # reloading the network for another target
    SWITCH_FAILED = "switch failed"  # that reload failed; the old network runs on
    RECONNECTING = "reconnecting"  # a camera or stream dropped; reopening with backoff
    FRAME_FAILED = "frame failed"  # the last frame could not be processed; the next one goes on
    ENDED = "ended"  # the source ended and every frame it gave is done
    ERROR = "error"  # the source could not be opened, or a thread failed


@dataclasses.dataclass(frozen=True)
class Status:
    """A phase and a line for people (``running on new/default/cpu``, ``reconnecting to ... (attempt 2)``)."""

    phase: Phase
    message: str

    def __str__(self) -> str:
        return self.message


_RUNNING_AFTER = frozenset({Phase.STARTING, Phase.OPENING, Phase.FRAME_FAILED, Phase.COMPILING})
"""Phases that a frame processed successfully turns into ``running``."""


class Pipeline:
    """Capture and forward threads around one model and one source.

    Args:
        model: a loaded :class:`Model` (loaded by the caller so that a bad
            model is an error before any window opens).
        source: a :class:`Source`, not yet opened (its thread opens it).
        view: the initial layer and grid settings.
        settings: the model settings, reused when the target is switched.
        source_options: how switched sources play (loop, pace, interval).
        reconnect: reopen a camera or stream whose read fails mid-run (with
            backoff, until it is back or the pipeline stops) instead of
            ending; files and folders are never reopened.
    """

    def __init__(
        self,
        model: Model,
        source: Source,
        view: View,
        settings: Settings | None = None,
        source_options: SourceOptions | None = None,
        reconnect: bool = True,
    ) -> None:
        model.layer(view.layer)  # fail now, not in a thread
        view = view.replace(pins=check_pins([model.layer(name).name for name in view.pins]))
        if view.cam is not None:
            explain.check(model, view.cam)
        self.model = model
        self.reconnect = reconnect
        self.view = view
        self.settings = settings or model.settings
        self.source_options = source_options or SourceOptions()
        self.stats = PipelineStats()
        self.frames: Slot[Frame] = Slot()
        self.results: Slot[Result] = Slot()
        self.status = Status(Phase.STARTING, "starting")
        self.error: str | None = None
        self.source_name = source.name
        self.source_ended = threading.Event()
        self.finished = threading.Event()
        self._source = source
        self._source_request: Source | None = None
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._steps = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # Under _lock: whether each thread runs and still takes work (a source switch, frames).
        self._capturing = False
        self._forwarding = False
        self._warm_model: Model | None = None
        self._cam_smoother = Smoother()  # the forward thread's only
        self._cam_key: tuple[Any, ...] | None = None  # what the last CAM plan was made for (forward thread)
        self._cam_planned: tuple[explain.CamPlan | None, str | None] = (None, None)
        # Headless at --pace max: hand every result over (a window shows the newest instead).
        self.wait_for_consumer = False
        # Headless with nothing that needs every result (no recording, no units): a result is made for the first
        # frame (and again after a change of view, model or shapes) and for the last frame forwarded, as the run
        # ends; none for the frames between. Each frame forwarded counts as a result delivered.
        self.final_only = False
        # Stop after this many frames forwarded (None: at the source's end or close); the last one gets a result.
        self.frame_limit: int | None = None
        self._forwarded = 0  # frames forwarded (forward thread)
        self._kept: tuple[Callable[[], Result], float, float] | None = None  # final_only: how to make the last result
        self._checked: tuple[Any, ...] | None = None  # the view, model and tapped shapes a result was last made for
        # Called (in the forward thread) after each result is published: a window wakes up with it. Must not block.
        self.on_publish: Callable[[], None] | None = None
        # Stop after this many frames failing in a row (None: never; the window shows the failure instead).
        self.max_failures: int | None = None
        self.gave_up: str | None = None
        self._failed_in_a_row = 0
        # Without max_failures (the window): after MAX_FAILED_IN_A_ROW failures in a row, stop trying (and logging)
        # until the layer, view, target or source changes; this says why, None while frames are processed.
        self.holding: str | None = None
        # The shown layer's units (top-k, statistics), reduced in their own thread; None: off (see enable_units).
        self.units: UnitsFeed | None = None
        self._pin_builders: dict[str, GridBuilder] = {}  # one per pinned layer (forward thread)
        # The timing panel: frames to profile on the next frame (0: none asked), the newest Timing, a plain net.
        self._profile_frames = 0
        self.timing: Timing | None = None
        self._profile_net: tuple[Model, Any] | None = None
        # Compare mode: the second configuration (forward thread), what the window asked for, and the status of it.
        self._comparer: Comparer | None = None
        self._diff_builder: GridBuilder | None = None
        self.compare_label: str | None = None
        self.compare_error: str | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Pipeline:
        """Start the capture and forward threads."""
        with self._lock:
            self._start_threads(capture=True, forward=True)
            if self.units is not None:
                self._threads.append(self.units.start())
        return self

    def enable_units(self, options: UnitOptions | None = None) -> UnitsFeed:
        """Reduce the shown layer's units (top-k frames, statistics) in a ``live-units`` thread, from now on.

        Called before :meth:`start` (the window does; plain headless runs
        do not, so their speed is unchanged), or after it: the thread starts
        at once then. Returns the feed (also :attr:`units`); a second call
        returns the same one.
        """
        with self._lock:
            if self.units is None:
                self.units = UnitsFeed(options or UnitOptions(), lambda: self.model, lambda: self.source_name)
                if self._threads:
                    self._threads.append(self.units.start())
            return self.units

    def _start_threads(self, capture: bool, forward: bool) -> None:
        """Start the named threads (caller holds ``_lock``); threads that have ended are forgotten."""
        threads = []
        if capture:
            self._capturing = True
            threads.append(
                threading.Thread(
                    target=self._worker, args=("capture", self._capture_loop), name="live-capture", daemon=True
                )
            )
        if forward:
            self._forwarding = True
            threads.append(
                threading.Thread(
                    target=self._worker, args=("forward", self._forward_loop), name="live-forward", daemon=True
                )
            )
        self._threads = [t for t in self._threads if t.is_alive()] + threads
        for thread in threads:
            thread.start()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Stop the threads (capture, forward, units) and release the source; True when all joined in time."""
        self._stop.set()
        self.frames.close()
        self.results.close()
        if self.units is not None:
            self.units.stop()
        deadline = time.perf_counter() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.perf_counter()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("threads still running after %.1f s: %s", timeout, ", ".join(alive))
        return not alive

    @property
    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ controls
    def set_view(self, **changes: Any) -> None:
        """Change the layer, grid options or CAM (``layer=``, ``norm=``, ``cmap=``, ``cam=``, ...) from any thread.

        ``cam`` is a :class:`~live.cam.CamOptions` (on) or None (off); the
        forward thread finds the head and taps its layer from the next frame
        on, so this never waits. ``pins`` (up to :data:`MAX_PINS` layer names;
        ``()``: none) are tapped in the same forward pass, each grid built on
        its own. Applied before the next frame; a pipeline on hold after
        failed frames tries again. Raises LayerError (unknown or untappable layer) or UsageError (a bad grid
        option, a class the labels do not have, a fifth pin) in the caller's thread.
        """
        if "pins" in changes:  # the catalog's names (a tensor or node name is accepted too), at most MAX_PINS
            changes["pins"] = check_pins([self.model.layer(name).name for name in changes["pins"]])
        view = self.view.replace(**changes)
        if "layer" in changes:
            self.model.layer(view.layer)  # unknown or untappable: raise in the caller's thread
        if changes.get("cam") is not None:
            explain.check(self.model, view.cam)
        self.view = view
        self._requests.put(self._retry)  # wake the forward thread's bookkeeping; a held pipeline tries again
        if self._paused.is_set():
            self.step()  # show the change on the paused frame

    def request_profile(self, frames: int = PROFILE_FRAMES) -> None:
        """Ask for a per-layer profile of the network on the next frame's blob; :attr:`timing` gets it.

        The forward thread runs it after that frame (``frames`` more forward
        passes of the plain network, :func:`live.profile.profile`); a request
        made while one is pending replaces it.
        """
        self._profile_frames = max(1, frames)
        if self._paused.is_set():
            self.step()

    def set_compare(self, opener: Callable[[Model], Comparer] | None, label: str | None = None) -> None:
        """Turn compare mode on (``opener`` builds the second side from the model, in the forward thread) or off.

        ``label`` names what was asked for; :attr:`compare_label` is set to it
        at once, :attr:`compare_error` says why the side could not be built.
        """
        self.compare_label = label if opener is not None else None
        self.compare_error = None

        def switch() -> None:
            self._comparer = None
            self._diff_builder = None
            if opener is None:
                return
            self.status = Status(Phase.SWITCHING, f"opening {label} to compare with...")
            try:
                self._comparer = opener(self.model)
            except (LiveError, cv2.error) as exc:
                message = _said(exc)
                self.compare_error = message
                self.status = Status(Phase.SWITCH_FAILED, f"compare {label} failed: {message}")
                return
            self.status = Status(Phase.RUNNING, f"comparing with {self._comparer.label}")

        self._requests.put(switch)
        if self._paused.is_set():
            self.step()

    @property
    def comparer(self) -> Comparer | None:
        """Compare mode's second side once the forward thread has built it (read it, never run it), else None."""
        return self._comparer

    def set_target(self, target: str, backend: str | None = None) -> None:
        """Reload the network for another target in the forward thread."""
        settings = self.settings.replace(target=target, backend=backend or self.settings.backend)

        def reload() -> None:
            self.status = Status(Phase.SWITCHING, f"switching to target {target}...")
            try:
                model = self.model.reload(settings)
                model.layer(self.view.layer)
            except LiveError as exc:
                self.status = Status(Phase.SWITCH_FAILED, f"target {target} failed: {exc}")
                self.error = str(exc)
                return
            self.model, self.settings = model, settings
            self._retry()
            note = f" ({'; '.join(model.notes)})" if model.notes else ""
            self.status = Status(Phase.RUNNING, f"running on {model.engine}/{model.backend}/{model.target}{note}")

        self._requests.put(reload)

    def set_source(self, spec: str) -> None:
        """Switch to another source; the capture thread closes the old one and opens this.

        After a source has ended (or failed to open), this starts the threads
        that stopped again, at once: a forward thread still finishing the old
        source's last frames carries on with the new one.
        """
        source = self.source_options.open(spec)
        self._requests.put(self._retry)
        with self._lock:
            if not self._threads or self._capturing:
                self._source_request = source  # taken by the capture thread before its next frame
                if self._threads and not self._forwarding:
                    self.finished.clear()
                    self._start_threads(capture=False, forward=True)
                return
            self._source = source
            self.source_ended.clear()
            self.finished.clear()
            self._start_threads(capture=True, forward=not self._forwarding)

    def pause(self, paused: bool = True) -> None:
        if paused:
            self._paused.set()
        else:
            self._paused.clear()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def step(self) -> None:
        """While paused, process exactly one more frame."""
        with self._lock:
            self._steps += 1

    # ------------------------------------------------------------ threads
    def _worker(self, kind: str, loop: Callable[[list[bool]], None]) -> None:
        """Body of the ``capture`` or ``forward`` thread: run ``loop``, log a fault, say the thread has ended.

        ``loop`` gets a one-item flag list and sets it when it has said so
        itself (under ``_lock``, where :meth:`set_source` may start another
        thread right after); otherwise it is said here, once.
        """
        said = [False]
        try:
            loop(said)
        except Exception as exc:  # a fault must not end a thread silently
            log.exception("%s thread failed", kind)
            self.error = f"{kind} failed: {exc}"
            self.status = Status(Phase.ERROR, f"error: {self.error}")
        finally:
            if not said[0]:
                with self._lock:
                    self._ended(kind)

    def _ended(self, kind: str) -> bool:
        """Say the ``capture`` or ``forward`` thread takes no more work (caller holds ``_lock``)."""
        if kind == "capture":
            self._capturing = False
            self.source_ended.set()
        else:
            self._forwarding = False
            self.finished.set()
        return True

    def _capture_loop(self, said: list[bool]) -> None:
        source: Source | None = self._source
        while source is not None and not self._stop.is_set():
            source = self._run_source(source)
            if source is None:
                with self._lock:  # a switch asked for as the source ended is not lost
                    source, self._source_request = self._source_request, None
                    if source is None:
                        said[0] = self._ended("capture")

    def _run_source(self, source: Source) -> Source | None:
        """Open, read into the frame slot, release. Returns the source switched to, if any."""
        self.status = Status(Phase.OPENING, f"opening {source.name}...")
        skipped = source.skipped
        try:
            source.open()
        except LiveError as exc:
            source.close()
            self.error = str(exc)
            self.status = Status(Phase.ERROR, f"error: {exc}")
            return None
        self.source_name = source.name
        self.error = None
        self.status = Status(Phase.RUNNING, "running")
        backpressure = is_replay(source)
        owned = True  # False once a reconnect attempt still in flight was left to release the source
        t_last = time.perf_counter()  # when the last frame came
        try:
            while not self._stop.is_set():
                with self._lock:
                    request, self._source_request = self._source_request, None
                if request is not None:
                    return request
                if backpressure and not self.frames.wait_taken(timeout=0.1):
                    continue  # read just in time: the frame's latency starts when the forward pass can take it
                frame = source.read()
                if source.skipped != skipped:
                    self.stats.skipped(source.skipped - skipped)
                    skipped = source.skipped
                if frame is None:
                    if self._stop.is_set() or not self._reconnects(source):
                        return None
                    back, owned = self._reconnect(source, t_last)
                    if not back:  # stopping, or switching source
                        with self._lock:
                            request, self._source_request = self._source_request, None
                        return request
                    continue
                self.stats.gap_ended(frame.t_capture)  # no-op unless an outage just ended
                t_last = frame.t_capture
                self.stats.captured(frame.t_capture)
                self.frames.put(self._preprocessed(frame))
            return None
        finally:
            self.stats.gap_ended()  # a run that stops during an outage closes it
            if owned:
                source.close()

    def _preprocessed(self, frame: Frame) -> Frame:
        """``frame`` with the network's input made from it (capture thread), overlapping the forward pass.

        Left to the forward thread where each frame's size refits the model, and where it fails (the forward
        thread tries again and reports why).
        """
        model = self.model
        if model.sized_by_frame:
            return frame
        try:
            return dataclasses.replace(frame, blob=model.preprocess.blob(frame.image), preprocess=model.preprocess)
        except (LiveError, cv2.error, ValueError):
            return frame

    def _reconnects(self, source: Source) -> bool:
        """Whether a failed read of ``source`` is an outage to ride out rather than its end."""
        return self.reconnect and source.kind in RECONNECT_KINDS

    def _interrupted(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s; True as soon as the pipeline stops or a source switch is requested."""
        return self._stop.wait(timeout) or self._source_request is not None

    def _reconnect(self, source: Source, since: float) -> tuple[bool, bool]:
        """Reopen a live source whose read failed, with backoff, until it is back, the run stops or the source switches.

        The dead capture is released at once; attempt N starts
        ``RECONNECT_FIRST_S * 2**(N-1)`` s (at most ``RECONNECT_MAX_S``) after
        the previous one failed. Waits and attempts are cut short within
        :data:`POLL_S` by :meth:`close` or :meth:`set_source`. The outage,
        counted from the last frame (``since``), is recorded in the stats; it
        ends with the next frame.

        Returns:
            ``(back, owned)``: ``back`` when the source is open again;
            ``owned`` False when an attempt still in flight was left to its
            thread, which releases the source (the caller must not touch it).
        """
        source.close()
        self.stats.gap_began(since)
        log.warning("%s: no more frames, reconnecting", source.name)
        delay = RECONNECT_FIRST_S
        attempt = 0
        while True:
            attempt += 1
            due = time.perf_counter() + delay
            while (left := due - time.perf_counter()) > 0:
                self.status = Status(
                    Phase.RECONNECTING, f"reconnecting to {source.name} (attempt {attempt}, next in {left:.1f} s)"
                )
                if self._interrupted(min(POLL_S, left)):
                    return False, True
            self.status = Status(
                Phase.RECONNECTING, f"reconnecting to {source.name} (attempt {attempt}, connecting...)"
            )
            reopen = _Reopen(source)
            while not reopen.wait(POLL_S):
                if self._interrupted(0):
                    return False, not reopen.abandon()
            if reopen.error is None:
                if self._interrupted(0):
                    return False, True
                log.warning("%s: reconnected (attempt %d)", source.name, attempt)
                self.status = Status(Phase.RUNNING, f"running (reconnected to {source.name}, attempt {attempt})")
                return True, True
            log.info("%s: reconnect attempt %d failed: %s", source.name, attempt, reopen.error)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def _forward_loop(self, said: list[bool]) -> None:
        builder: GridBuilder | None = None
        while not self._stop.is_set():
            self._apply_requests()
            if self._paused.is_set():
                with self._lock:
                    stepping = self._steps > 0
                    if stepping:
                        self._steps -= 1
                if not stepping:
                    time.sleep(0.01)
                    continue
            got = self.frames.take(timeout=0.05)
            if got is None:
                with self._lock:  # decided under the lock that set_source takes to start a new source
                    if self.source_ended.is_set() and not self.frames.pending:
                        # The source ended and every frame it gave is done.
                        self.status = (
                            Status(Phase.ENDED, "ended")
                            if self.error is None
                            else Status(Phase.ERROR, f"error: {self.error}")
                        )
                        self._finish()
                        said[0] = self._ended("forward")
                        return
                continue
            _, frame = got
            if self.holding is not None:
                continue  # frames are taken (a replay does not wait on them) but not tried until something changes
            view = self.view
            if builder is None or view.grid != builder.options:
                builder = view.grid.builder()
            self._process(frame, view, builder)
        self._finish()  # stopped: closed, the frame budget spent, or too many failures

    def _apply_requests(self) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            request()

    def _process(self, frame: Frame, view: View, builder: GridBuilder) -> None:
        model = self.model
        if model is not self._warm_model:
            self._warm_model = model
            if model.target != "cpu":
                self.status = Status(
                    Phase.COMPILING, f"compiling OpenCL kernels for {model.target} (the first pass takes seconds)..."
                )
        start = time.perf_counter()
        h, w = frame.image.shape[:2]
        plan, cam_error = self._cam_plan(model, view)
        try:  # one frame that cannot be processed is reported, counted and passed over
            if frame.blob is not None and frame.preprocess == model.preprocess and not model.sized_by_frame:
                blob = frame.blob
            else:
                blob = model.blob(frame.image)
            taps = list(dict.fromkeys((view.layer, *view.pins, *(plan.taps if plan else ()))))
            outputs = model.forward(blob, taps)  # the shown layer, the pinned ones and the CAM layer: one pass
            # What only a consumer looks at (the grids, what the network sees, CAM, the difference map) is made
            # for the frames it will take: a window showing 30 frames a second of a network running 130 takes
            # one in four, and the rest cost the forward pass alone.
            last = self.frame_limit is not None and self._forwarded + 1 >= self.frame_limit
            # With final_only, a frame's result is still made whenever the view, the model or a tapped shape
            # changed: what would fail in making it (a batch index out of range, say) fails here, frame by frame.
            shapes = (view, model, tuple(outputs[name].shape for name in taps)) if self.final_only else None
            wanted = shapes != self._checked if self.final_only else self.results.wanted()
            present = self.wait_for_consumer or last or wanted
            result = self._present(frame, view, model, builder, blob, outputs, plan, cam_error) if present else None
            if result is not None and shapes is not None:
                self._checked = shapes
        except (LiveError, cv2.error) as exc:
            message = _said(exc)
            self.stats.failed()
            log.warning("frame %d (%dx%d): %s", frame.index, w, h, message)
            self.status = Status(Phase.FRAME_FAILED, f"frame {frame.index}: {message}")
            self._count_failure(f"frame {frame.index} ({w}x{h}): {message}")
            return
        self._failed_in_a_row = 0
        done = time.perf_counter()
        ms = (done - start) * 1e3
        self.stats.forwarded(ms, done)
        self._forwarded += 1
        if self.status.phase in _RUNNING_AFTER:
            self.status = Status(Phase.RUNNING, f"running on {model.engine}/{model.backend}/{model.target}")
        if self.final_only:
            self.stats.shown(frame.t_capture, done)  # the frame's outputs are its result
            self._kept = None
            if result is None:  # kept, to be made should this frame turn out to be the last
                self._kept = (functools.partial(self._present, frame, view, model, builder, blob, outputs, plan,
                                                cam_error), ms, done)  # fmt: skip
        if result is None:
            if not self.final_only:
                self.results.skip()
        else:
            self._publish(dataclasses.replace(result, forward_ms=ms, t_done=done))
        if last:  # the frame budget is spent: the run is over
            self._stop.set()
            self.frames.close()
        if self._profile_frames:
            self._profile(model, blob)

    def _publish(self, result: Result) -> None:
        """Hand ``result`` to the units thread and the consumer (forward thread); a headless replay waits for it."""
        if self.units is not None:
            self.units.offer(result)  # never waits: a busy units thread skips frames
        if self.wait_for_consumer:
            while not self.results.wait_taken(timeout=0.1):
                if self._stop.is_set() or self.results.closed:
                    return
        if self.final_only:
            self.results.keep(result)  # nobody takes it: it is there to peek at (also once the run has closed)
        else:
            self.results.put(result)
        if self.on_publish is not None:
            self.on_publish()

    def _finish(self) -> None:
        """With :attr:`final_only`, make and publish the last forwarded frame's result (forward thread, at its end)."""
        kept, self._kept = self._kept, None
        if kept is None:
            return
        present, ms, done = kept
        try:
            result = present()
        except (LiveError, cv2.error) as exc:
            message = _said(exc)
            log.warning("the last frame's result: %s", message)
            return
        self._publish(dataclasses.replace(result, forward_ms=ms, t_done=done))

    def _present(
        self,
        frame: Frame,
        view: View,
        model: Model,
        builder: GridBuilder,
        blob: np.ndarray,
        outputs: dict[str, np.ndarray],
        plan: explain.CamPlan | None,
        cam_error: str | None,
    ) -> Result:
        """The :class:`Result` of one forward pass (forward thread): grids, what the network sees, CAM, top classes.

        ``outputs`` maps each tapped layer (and the network's outputs) to its
        blob; the taps that are no network output are taken out of it here.
        ``forward_ms`` and ``t_done`` are filled in by the caller.
        """
        h, w = frame.image.shape[:2]
        cam_result, cam_error = self._cam(plan, model, outputs, frame, view) if plan else (None, cam_error)
        tapped = outputs[view.layer]
        pinned_blobs = {name: outputs[name] for name in view.pins}
        for name in list(outputs):
            if name not in model.outputs:
                outputs.pop(name)
        order = None
        if view.grid.order == "running" and self.units is not None:
            order = self.units.order_for(view.layer, view.grid.batch, view.grid.layout)
        grid = builder.build(tapped, order=order)
        image = grid.image.copy()
        return Result(
            seq=self.results.seq + 1,
            frame=frame,
            layer=view.layer,
            blob=tapped,
            outputs=outputs,
            grid=image,
            layout=grid.layout,
            lo=grid.lo,
            hi=grid.hi,
            seen=model.preprocess.image(blob),
            crop=model.preprocess.crop_rect((w, h)),
            view=view,
            forward_ms=0.0,
            t_done=0.0,
            engine=model.engine,
            backend=model.backend,
            target=model.target,
            top=model.top(outputs),
            cam=cam_result,
            cam_error=cam_error,
            pinned=self._pinned(view, tapped, image, grid, pinned_blobs),
            difference=self._difference(blob, view, tapped) if self._comparer is not None else None,
        )

    def _pinned(
        self, view: View, tapped: np.ndarray, image: np.ndarray, grid: Any, blobs: dict[str, np.ndarray]
    ) -> tuple[PinnedGrid, ...]:
        """Each shown layer's grid when layers are pinned (forward thread); the shown layer's is ``grid`` itself."""
        if not view.pins:
            if self._pin_builders:
                self._pin_builders = {}
            return ()
        builders = {}
        pinned = []
        for name in view.shown_layers:
            if name == view.layer:
                pinned.append(PinnedGrid(name, tapped, image, grid.layout, grid.lo, grid.hi))
                continue
            builder = self._pin_builders.get(name)
            if builder is None or builder.options != view.grid:
                builder = view.grid.builder()
            builders[name] = builder
            built = builder.build(blobs[name])  # its own normalization; tiles in channel order
            pinned.append(PinnedGrid(name, blobs[name], built.image.copy(), built.layout, built.lo, built.hi))
        self._pin_builders = builders
        return tuple(pinned)

    def _difference(self, blob: np.ndarray, view: View, tapped: np.ndarray) -> Difference:
        """Compare mode: the shown layer on the second configuration against ``tapped`` (forward thread)."""
        comparer = self._comparer
        assert comparer is not None
        try:
            diff, max_abs, max_rel = comparer.difference(blob, view.layer, tapped)
        except (LiveError, cv2.error, ValueError) as exc:
            message = _said(exc)
            return Difference(comparer.label, view.layer, error=message)
        options = GridOptions("layer", pad=view.grid.pad, max_size=view.grid.max_size, cmap=view.grid.cmap,
                              batch=view.grid.batch, layout=view.grid.layout)  # fmt: skip
        if self._diff_builder is None or self._diff_builder.options != options:
            self._diff_builder = options.builder()
        built = self._diff_builder.build(diff)
        return Difference(
            comparer.label, view.layer, diff, built.image.copy(), built.layout, built.lo, built.hi, max_abs, max_rel
        )

    def _profile(self, model: Model, blob: np.ndarray) -> None:
        """The asked-for per-layer profile on ``blob`` (forward thread), published as :attr:`timing`."""
        frames, self._profile_frames = self._profile_frames, 0
        seq = self.timing.seq + 1 if self.timing is not None else 1
        try:
            if self._profile_net is None or self._profile_net[0] is not model:
                self._profile_net = (model, model.plain_net())
            self.timing = Timing(seq, profiling.profile(model, blob, frames=frames, net=self._profile_net[1]))
        except (LiveError, cv2.error) as exc:
            message = _said(exc)
            self.timing = Timing(seq, None, message)

    def _cam_plan(self, model: Model, view: View) -> tuple[explain.CamPlan | None, str | None]:
        """The view's CAM plan (the head is found once per model), or why there is none; (None, None) when off."""
        if view.cam is None:
            return None, None
        key = (model, view.cam, view.layer, view.grid.batch, view.grid.layout)
        if key != self._cam_key:  # a new model (by identity), options, layer or map layout
            try:
                planned = explain.plan(model, view.cam, view.layer, batch=view.grid.batch, layout=view.grid.layout)
                self._cam_planned = (planned, None)
            except LiveError as exc:
                self._cam_planned = (None, str(exc))
            self._cam_key = key
        return self._cam_planned

    def _cam(
        self, plan: explain.CamPlan, model: Model, outputs: dict[str, Any], frame: Frame, view: View
    ) -> tuple[CamResult | None, str | None]:
        """This frame's CAM, its heat smoothed over the frames' capture times, or why there is none."""
        try:
            result = explain.compute(plan, model, outputs)
        except LiveError as exc:
            return None, str(exc)
        assert view.cam is not None
        key = (plan.method, plan.layer, view.cam.cls)
        heat = self._cam_smoother.update(result.heat, frame.t_capture, view.cam.smoothing_s, key)
        return result.replace(heat=heat), None

    def _retry(self) -> None:
        """Something changed (view, target, source): frames are tried again (forward thread)."""
        if self.holding is not None:
            self.holding = None
            self._failed_in_a_row = 0
            self.status = Status(Phase.STARTING, "trying again")

    def _count_failure(self, last: str) -> None:
        """One more frame failed; at :attr:`max_failures` in a row (pictures, for a slideshow), stop and say why.

        Without :attr:`max_failures` (the window), as many failures in a row
        as :data:`MAX_FAILED_IN_A_ROW` put the pipeline on hold instead: no
        frame is tried (nor logged) until the layer, view, target or source
        changes, and the status says so.
        """
        self._failed_in_a_row += 1
        source = self._source
        # A slideshow shows each picture SLIDE_FPS times a second: count pictures, not repeats.
        repeats = max(1, round(getattr(source, "interval", 0) * (source.fps or 0))) if source.kind == "folder" else 1
        if self.max_failures is None:
            if self._failed_in_a_row >= MAX_FAILED_IN_A_ROW * repeats:
                self.holding = (
                    f"stopped trying after {self._failed_in_a_row} frames in a row failed (the last: {last}); "
                    "change the layer, source or target to try again"
                )
                self.status = Status(Phase.ERROR, self.holding)
                log.warning("%s", self.holding)
            return
        if self._failed_in_a_row < self.max_failures * repeats:
            return
        self.gave_up = (
            f"stopped: {self._failed_in_a_row} frames in a row failed, so this run can produce no result; "
            f"the last: {last}"
        )
        self.error = self.gave_up
        self.status = Status(Phase.ERROR, f"error: {self.gave_up}")
        log.info("%s", self.gave_up)
        self._stop.set()

    # ------------------------------------------------------------ figures
    def stats_snapshot(self, display_key: str = "display_fps") -> dict[str, Any]:
        """Stats plus what is in use, JSON-ready."""
        data = self.stats.snapshot(self.frames.dropped, display_key)
        data["dropped_results"] = self.results.dropped
        data["reconnect"] = self.reconnect
        if self.units is not None:
            data["units"] = self.units.describe()
        _, result = self.results.peek()
        data.update(
            {
                "engine": self.model.engine,
                "backend": self.model.backend,
                "target": self.model.target,
                "layer": self.view.layer,
                "norm": self.view.grid.norm,
                "grid": self.view.grid.to_dict(),
                "source": self.source_name,
                "cam": self.view.cam.to_dict() if self.view.cam is not None else None,
                "cam_result": (
                    {**result.cam.to_dict(), "caption": result.cam.caption()}
                    if result is not None and result.cam is not None
                    else None
                ),
                "cam_error": result.cam_error if result is not None else None,
                "grid_shape": list(result.grid.shape) if result is not None else None,
                "layer_shape": list(result.blob.shape) if result is not None else None,
                "pins": list(self.view.pins),
                "pinned": (
                    [
                        {"layer": p.layer, "shape": list(p.blob.shape), "grid_shape": list(p.grid.shape)}
                        for p in result.pinned
                    ]
                    if result is not None
                    else []
                ),
                "status": self.status.message,
                "phase": self.status.phase.value,
            }
        )
        return data


def run_headless(
    pipeline: Pipeline,
    frames: int | None = None,
    on_result: Callable[[Result], None] | None = None,
    timeout_s: float | None = None,
    max_failures: int | None = MAX_FAILED_IN_A_ROW,
) -> dict[str, Any]:
    """Consume results without a window until ``frames`` results, the end of the source, or Ctrl-C.

    With ``on_result`` (a recording, say) or units on, each result is made and
    handed over (every frame's, for a replay at ``--pace max``; otherwise the
    newest). Without, nothing needs a frame's grid but the last: each frame
    costs its forward pass alone and counts as a result. A :class:`Result`
    is made for the first frame (what would fail in making one fails there,
    and counts as a failed frame) and for the last, as the run ends (the
    stats' ``grid_shape``, a snapshot: ``pipeline.results.peek()``).

    ``max_failures`` frames failing in a row end the run too (None: never);
    :attr:`Pipeline.gave_up` then says why.

    Returns the final stats (``result_fps`` in place of ``display_fps``).
    """
    last = 0
    got = 0
    deadline = None if timeout_s is None else time.perf_counter() + timeout_s
    pipeline.max_failures = max_failures
    if on_result is None and pipeline.units is None:
        pipeline.final_only = True
        pipeline.frame_limit = frames
        pipeline.start()
        try:
            while not pipeline.finished.wait(0.1):
                if deadline is not None and time.perf_counter() > deadline:
                    break
        finally:
            pipeline.close()
        return pipeline.stats_snapshot("result_fps")
    pipeline.wait_for_consumer = is_replay(pipeline._source)
    pipeline.start()
    try:
        while frames is None or got < frames:
            item = pipeline.results.take(after=last, timeout=0.1)
            if item is None:
                if pipeline.finished.is_set() and pipeline.source_ended.is_set():
                    break
                if deadline is not None and time.perf_counter() > deadline:
                    break
                continue
            last, result = item
            pipeline.stats.shown(result.frame.t_capture)
            got += 1
            if on_result is not None:
                on_result(result)
    finally:
        pipeline.close()
    return pipeline.stats_snapshot("result_fps")
