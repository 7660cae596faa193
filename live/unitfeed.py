"""The units thread: a :class:`~live.units.UnitReducer` for the shown layer, fed from the pipeline's results.

What each unit of the shown layer responds to, gathered while the video
plays, off the GUI thread and off the forward thread's path:

* The forward thread hands every result to :meth:`UnitsFeed.offer`: one put
  into a latest-wins :class:`~live.pipeline.Slot`-like mailbox, never a wait.
* The thread ``live-units`` takes the newest result, turns its tapped blob
  into maps (:func:`live.maps.blob_to_maps`, with the view's batch and map
  layout) and calls :meth:`UnitReducer.update` with the frame, the source's
  name, the frame's index and time, and the layer's receptive-field boxes
  (:func:`live.receptive.box_maps`), at most :data:`MAX_RATE` times a
  second, and never more than :data:`MAX_SHARE` of the time: after an
  update that took ``d`` seconds, the next starts ``d / MAX_SHARE`` after it
  at the soonest. When it is busy, or sooner than that, results are skipped
  (:attr:`UnitsState.skipped` counts them): the forward pass never waits
  for the reducer, and what the reducer costs is bounded whatever the layer
  (a wide early layer, a big frame); it sees fewer frames instead.
* Another layer (or batch item, or map layout) starts a new reducer; so does
  :meth:`UnitsFeed.reset`.
* What the window and the forward thread read is a :class:`UnitsState`, an
  immutable copy published at most every :data:`PUBLISH_S` seconds (and at
  once after a reset or a new layer). It is replaced whole, so a reader sees
  an old or a new state, never half of one.
* :meth:`UnitsFeed.save` writes the reducer's state from the units thread,
  between two updates, and returns a :class:`~concurrent.futures.Future`.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from types import MappingProxyType
from typing import Any

import cv2
import numpy as np

from live import receptive
from live.errors import LiveError
from live.frames import Result
from live.maps import blob_to_maps
from live.model import Model
from live.units import FrameInfo, Record, UnitOptions, UnitReducer

log = logging.getLogger("live.units")
PUBLISH_S = 0.2
"""The longest a published :class:`UnitsState` lags the reducer (the window redraws its panels at about this rate)."""
WAIT_S = 0.05
"""How long the units thread waits for a result before it looks at requests (reset, save, stop) again."""
MAX_RATE = 5.0
"""Frames a second the units thread reduces at most (the newest result each time; the others count as skipped).

Five frames a second sample every second of video several times. (With thumbnails scaled when read, an update
on real video at the bundled model's layers costs about 1 to 2 ms, 0.5 to 1 % of a core at this rate; before,
8 to 19 ms, and the window's forward rate was 10 % lower with units than without at 5 a second, 14 % at 10.)
"""
MAX_SHARE = 0.05
"""The units thread's share of the wall clock at most: after an update (and the publish it led to) that took ``d``
seconds, the next starts no sooner than ``d / MAX_SHARE`` after this one started.

It binds only when an update costs more than ``MAX_SHARE / MAX_RATE`` (10 ms): a layer of many large maps, a big
frame, a state saved; then the units see fewer frames instead of taking a 2-core machine's time from the
forward pass. Measured on the update's wall time (what the thread held a core and the GIL for, at most).
"""


@dataclasses.dataclass(frozen=True, eq=False)
class UnitsState:
    """What the reducer of the shown layer holds, copied for other threads.

    Attributes:
        seq: 1, 2, ... one more for every state published.
        layer: the layer's name; ``key`` is (layer, batch, map layout): the
            maps the units are.
        units: number of units C (the maps :func:`~live.maps.blob_to_maps` makes of the blob).
        frames: frames the reducer saw since it was made or reset.
        skipped: results that came while the thread was busy, not seen.
        options: the reducer's options (``k``, ``gap_s``, ``dead_at``, ``thumb``).
        mean, std, max, sparsity: float64 (C,): each unit's statistics over
            every value of its map on every frame seen (``max`` is -inf
            before the first frame).
        dead: bool (C,): units whose maximum never exceeded ``options.dead_at``
            (all False before the first frame).
        order: the units by running mean, highest first (stable, NaN last): a
            permutation of ``range(C)``, the ``running`` tile order.
        top: the watched units' best records so far (:meth:`UnitsFeed.watch`), best first, at
            most ``options.k`` each: unit -> records. (Copying every unit's top-k a few times a
            second would cost tens of ms for a layer of 1280 units.)
        error: why the last frame could not be reduced, or None.
    """

    seq: int
    layer: str
    key: tuple[str, int, str]
    units: int
    frames: int
    skipped: int
    options: UnitOptions
    mean: np.ndarray
    std: np.ndarray
    max: np.ndarray
    sparsity: np.ndarray
    dead: np.ndarray
    order: tuple[int, ...]
    top: Mapping[int, tuple[Record, ...]]
    error: str | None = None


def running_order(mean: np.ndarray) -> tuple[int, ...]:
    """Units by mean, highest first; ties keep unit order and NaN comes last. ``mean``: float (C,)."""
    return tuple(np.argsort(-np.nan_to_num(np.asarray(mean, np.float64), nan=-np.inf), kind="stable").tolist())


class _Mailbox:
    """The newest offered result (latest wins) and how many were replaced before the units thread took them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value: Result | None = None
        self.skipped = 0
        self.closed = False

    def put(self, value: Result) -> None:
        with self._cond:
            if self.closed:
                return
            if self._value is not None:
                self.skipped += 1
            self._value = value
            self._cond.notify()

    def take(self, timeout: float) -> Result | None:
        with self._cond:
            self._cond.wait_for(lambda: self._value is not None or self.closed, timeout)
            value, self._value = self._value, None
            return value

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class UnitsFeed:
    """The ``live-units`` thread and the reducer it owns (see the module's docstring).

    Args:
        options: the reducer's options (top-k, gap, dead threshold, thumbnail size).
        model: returns the model in use (for the receptive fields; a target
            switch replaces it).
        source: returns the name of the source in use (the records' ``source``).
        max_rate: frames a second reduced at most (None: as many as it can).
        max_share: the share of the wall clock the updates take at most (None: no bound but ``max_rate``).
    """

    def __init__(
        self,
        options: UnitOptions,
        model: Callable[[], Model],
        source: Callable[[], str],
        max_rate: float | None = MAX_RATE,
        max_share: float | None = MAX_SHARE,
    ) -> None:
        self.options = options
        self.max_rate = max_rate
        self.max_share = max_share
        self.update_ms = 0.0  # the last update's wall time (the units thread writes it; a float, written whole)
        self.state: UnitsState | None = None
        self.error: str | None = None
        self._model = model
        self._source = source
        self._box = _Mailbox()
        # Requests run by the thread between updates; called with True instead when it ends (a save then fails).
        self._requests: queue.SimpleQueue[Callable[[bool], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._ended = False  # under _lock: the thread takes no more requests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The units thread's own, from here on.
        self._reducer: UnitReducer | None = None
        self._key: tuple[str, int, str] | None = None
        self._units = 0
        self._boxes: dict[tuple[int, str, tuple[int, int]], dict[str, receptive.BoxMap] | None] = {}
        self._t0: dict[str, float] = {}
        self._seq = 0
        self._watched = 0  # the unit whose top-k the states carry (one int: written whole by any thread)
        self._published = 0.0
        self._dirty = False
        self._skipped_at_reset = 0

    # ------------------------------------------------------------ any thread
    def start(self) -> threading.Thread:
        """Start the thread (once); returns it, for the pipeline to join."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="live-units", daemon=True)
            self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Ask the thread to end (the pipeline joins it); pending saves fail."""
        self._stop.set()
        self._box.close()

    @property
    def reducer(self) -> UnitReducer | None:
        """The reducer itself (the units thread's: read it only while no result comes, e.g. paused)."""
        return self._reducer

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def offer(self, result: Result) -> None:
        """Hand a result over (the forward thread, per frame): replaces one not yet taken, never waits."""
        self._box.put(result)

    def watch(self, unit: int) -> None:
        """Carry this unit's top-k in the states from now on (the window's selected unit); published at once."""
        if unit != self._watched:
            self._watched = unit
            self._request(lambda ending: None if ending else self._publish())

    def reset(self) -> None:
        """Forget everything seen: a new, empty reducer for the shown layer (applied by the thread at once)."""
        self._request(lambda ending: None if ending else self._reset())

    def save(self, folder: Path) -> Future[Path]:
        """Write the reducer's state to ``folder`` (:meth:`UnitReducer.save`) from the units thread.

        Returns:
            A future: ``folder`` once written, or the :class:`LiveError` that
            stopped it (also when the thread is not running or no frame was
            seen yet).
        """
        future: Future[Path] = Future()

        def write(ending: bool) -> None:
            if not future.set_running_or_notify_cancel():
                return
            if ending:
                future.set_exception(LiveError("the units thread stopped before the units state was saved"))
                return
            try:
                if self._reducer is None:
                    raise LiveError("no frame reduced yet: nothing to save")
                self._reducer.save(folder)
            except LiveError as exc:
                future.set_exception(exc)
            except OSError as exc:
                future.set_exception(LiveError(f"cannot write units state {folder}: {exc.strerror or exc}"))
            else:
                future.set_result(folder)

        if not self._request(write):
            write(True)
        return future

    def _request(self, request: Callable[[bool], None]) -> bool:
        """Queue a request for the thread; False when it takes no more (not started, or ended)."""
        with self._lock:
            if self._thread is None or self._ended:
                return False
            self._requests.put(request)
            return True

    def order_for(self, layer: str, batch: int, layout: str) -> tuple[int, ...] | None:
        """The running order of these maps (a layer, batch item and map layout), when the published state is theirs."""
        state = self.state
        if state is None or state.key != (layer, batch, layout):
            return None
        return state.order

    # ------------------------------------------------------------ the units thread
    def _run(self) -> None:
        try:
            due = 0.0  # when the next result may be taken (max_rate, max_share)
            while not self._stop.is_set():
                self._apply_requests()
                if (wait := due - time.perf_counter()) > 0:
                    self._stop.wait(min(wait, WAIT_S))
                    continue
                result = self._box.take(WAIT_S)
                start = time.perf_counter()
                if result is not None:
                    self._update(result)
                if self._dirty and time.perf_counter() - self._published >= PUBLISH_S:
                    self._publish()
                if result is not None:
                    spent = time.perf_counter() - start
                    self.update_ms = spent * 1e3
                    due = start + max(1.0 / self.max_rate if self.max_rate else 0.0, self._rest(spent))
            last = self._box.take(0)  # the result that came as the pipeline stopped, then the final state
            if last is not None:
                self._update(last)
            if self._dirty:
                self._publish()
        except Exception as exc:  # a fault must not end the thread silently
            log.exception("units thread failed")
            self.error = f"units failed: {exc}"
            self._publish()
        finally:
            with self._lock:
                self._ended = True
            self._apply_requests(ending=True)  # a save asked for as the thread ended fails: never left waiting

    def _rest(self, spent: float) -> float:
        """Seconds from an update's start to the next one's, at least, for it to take ``max_share`` of the time."""
        return spent / self.max_share if self.max_share else 0.0

    def _apply_requests(self, ending: bool = False) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            request(ending)

    def _reset(self) -> None:
        if self._key is not None:
            self._reducer = UnitReducer({self._key[0]: self._units}, self.options)
        self._skipped_at_reset = self._box.skipped
        self.error = None
        self._publish()

    def _update(self, result: Result) -> None:
        grid = result.view.grid
        try:
            maps = blob_to_maps(result.blob, grid.batch, grid.layout)
        except LiveError as exc:
            self._failed(str(exc))
            return
        key = (result.layer, grid.batch, grid.layout)
        if key != self._key or maps.shape[0] != self._units:
            if self._key is not None:  # another layer: its skips count from here (the first counts them all)
                self._skipped_at_reset = self._box.skipped
            self._key, self._units = key, int(maps.shape[0])
            self._reducer = UnitReducer({result.layer: self._units}, self.options)
            self._publish()
        assert self._reducer is not None
        frame = result.frame
        height, width = frame.image.shape[:2]
        source = self._source()
        if frame.pos_ms is not None:
            time_s = frame.pos_ms / 1000.0
        else:  # a camera: seconds since its first frame
            time_s = frame.t_capture - self._t0.setdefault(source, frame.t_capture)
        info = FrameInfo(source=source, frame=frame.index, time_s=float(time_s))
        try:
            boxes = self._box_maps(result.layer, (width, height))
            self._reducer.update(info, {result.layer: maps}, frame.image, boxes)
        except (LiveError, cv2.error, ValueError) as exc:
            self._failed(f"frame {frame.index}: {exc}")
            return
        self.error = None
        self._dirty = True

    def _failed(self, message: str) -> None:
        if self.error != message:
            log.warning("units: %s", message)
        self.error = message
        self._dirty = True

    def _box_maps(self, layer: str, frame_size: tuple[int, int]) -> dict[str, receptive.BoxMap] | None:
        """The layer's receptive-field boxes for frames of this size (made once per model, layer and size)."""
        model = self._model()
        key = (id(model), layer, frame_size)
        if key not in self._boxes:
            if len(self._boxes) > 16:
                self._boxes.clear()
            try:
                self._boxes[key] = receptive.box_maps(model, [layer], frame_size)
            except (LiveError, ValueError, KeyError) as exc:
                log.warning("units: receptive fields of %s unknown (%s): proportional boxes", layer, exc)
                self._boxes[key] = None
        return self._boxes[key]

    def _publish(self) -> None:
        """Copy the reducer's state into a new :class:`UnitsState` (the units thread's only)."""
        self._published = time.perf_counter()
        self._dirty = False
        if self._reducer is None or self._key is None:
            return
        layer = self._reducer.layers[self._key[0]]
        seen = layer.frames > 0
        mean = np.array(layer.mean, np.float64)
        self._seq += 1
        self.state = UnitsState(
            seq=self._seq,
            layer=self._key[0],
            key=self._key,
            units=self._units,
            frames=int(layer.frames),
            skipped=self._box.skipped - self._skipped_at_reset,
            options=self.options,
            mean=mean,
            std=np.array(layer.std(), np.float64),
            max=np.array(layer.max, np.float64),
            sparsity=np.array(layer.sparsity(), np.float64) if seen else np.zeros(self._units),
            dead=np.array(layer.dead(self.options.dead_at), bool) if seen else np.zeros(self._units, bool),
            order=running_order(mean),
            top=MappingProxyType({unit: tuple(layer.top(unit)) for unit in {self._watched} if unit < self._units}),
            error=self.error,
        )

    def describe(self) -> dict[str, Any]:
        """The published state in a few figures (JSON-ready), for the stats."""
        state = self.state
        if state is None:
            return {"layer": None, "frames": 0, "skipped": 0}
        return {
            "layer": state.layer,
            "units": state.units,
            "frames": state.frames,
            "skipped": state.skipped,
            "dead": int(state.dead.sum()),
            "update_ms": round(self.update_ms, 3),
        }
