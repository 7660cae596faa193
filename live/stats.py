"""Rolling rates and latency percentiles for the pipeline's stats panel.

Thread-safe: workers record, the GUI (or the headless loop) reads snapshots.
Times are ``time.perf_counter()`` seconds; latencies are milliseconds.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import numpy as np


class RateMeter:
    """Events per second over a sliding window of the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self.count = 0
        self._times: collections.deque[float] = collections.deque()
        self._first: float | None = None
        self._last: float | None = None

    def tick(self, t: float | None = None) -> None:
        """Record one event at time ``t`` (now by default)."""
        now = time.perf_counter() if t is None else t
        self.count += 1
        self._times.append(now)
        if self._first is None:
            self._first = now
        self._last = now
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window ending ``now`` (0 with fewer than two events)."""
        now = time.perf_counter() if now is None else now
        times = [t for t in self._times if now - t <= self.window_s]
        if len(times) < 2:
            return 0.0
        span = times[-1] - times[0]
        return (len(times) - 1) / span if span > 0 else 0.0

    def overall(self) -> float:
        """Events per second from the first to the last event."""
        if self._first is None or self._last is None or self.count < 2 or self._last <= self._first:
            return 0.0
        return (self.count - 1) / (self._last - self._first)


class LatencyMeter:
    """Latency samples (ms): the last ``keep`` for percentiles, and all-time totals."""

    def __init__(self, keep: int = 600) -> None:
        self._recent: collections.deque[tuple[float, float]] = collections.deque(maxlen=keep)
        self.count = 0
        self._total = 0.0

    def add(self, ms: float, t: float | None = None) -> None:
        """Record one latency ``ms`` observed at time ``t``."""
        self._recent.append((time.perf_counter() if t is None else t, float(ms)))
        self.count += 1
        self._total += float(ms)

    def summary(self) -> dict[str, float]:
        """``{"mean", "p50", "p95", "max"}`` over the kept samples (zeros when empty)."""
        if not self._recent:
            return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}
        values = np.fromiter((v for _, v in self._recent), np.float64, len(self._recent))
        p50, p95 = np.percentile(values, [50, 95])
        return {"mean": float(values.mean()), "p50": float(p50), "p95": float(p95), "max": float(values.max())}

    def series(self, since: float) -> tuple[np.ndarray, np.ndarray]:
        """(times, ms) of the samples newer than ``since``, for a live plot."""
        pairs = [(t, v) for t, v in self._recent if t >= since]
        if not pairs:
            return np.empty(0), np.empty(0)
        arr = np.asarray(pairs, np.float64)
        return arr[:, 0], arr[:, 1]


class PipelineStats:
    """Everything the stats panel and ``--stats-json`` show, behind one lock.

    Rates: capture (frames read), forward (results produced), display (results
    shown). Latencies: forward (preprocess + forward + grid), end to end
    (capture to display, or to result when headless). Faults: ``errors``
    (frames whose forward pass failed), ``gaps`` and ``gap_s`` (outages of a
    live source and the seconds they lasted without frames, an outage still
    going on included), ``skipped_frames`` (undecodable frames of a damaged
    video that were passed over).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.perf_counter()
        self.capture = RateMeter()
        self.forward = RateMeter()
        self.display = RateMeter()
        self.forward_ms = LatencyMeter()
        self.latency_ms = LatencyMeter()
        self.errors = 0
        self.gaps = 0
        self.gap_s = 0.0
        self.skipped_frames = 0
        self._gap_since: float | None = None

    def captured(self, t: float | None = None) -> None:
        with self._lock:
            self.capture.tick(t)

    def forwarded(self, ms: float, t: float | None = None) -> None:
        with self._lock:
            self.forward.tick(t)
            self.forward_ms.add(ms, t)

    def shown(self, t_capture: float, t: float | None = None) -> None:
        now = time.perf_counter() if t is None else t
        with self._lock:
            self.display.tick(now)
            self.latency_ms.add((now - t_capture) * 1e3, now)

    def failed(self) -> None:
        with self._lock:
            self.errors += 1

    def gap_began(self, t: float | None = None) -> None:
        """A live source stopped delivering at time ``t`` (its last frame); counts one gap."""
        with self._lock:
            if self._gap_since is None:
                self.gaps += 1
                self._gap_since = time.perf_counter() if t is None else t

    def gap_ended(self, t: float | None = None) -> None:
        """Frames flow again (or the run stops) at time ``t``: the open gap's seconds are added up."""
        now = time.perf_counter() if t is None else t
        with self._lock:
            if self._gap_since is not None:
                self.gap_s += max(0.0, now - self._gap_since)
                self._gap_since = None

    def skipped(self, count: int) -> None:
        """``count`` more frames of the source could not be decoded and were passed over."""
        with self._lock:
            self.skipped_frames += count

    def series(self, seconds: float = 10.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Recent (t, ms) samples of forward and end-to-end latency, t relative to now."""
        now = time.perf_counter()
        with self._lock:
            out = {"forward": self.forward_ms.series(now - seconds), "latency": self.latency_ms.series(now - seconds)}
        return {k: (t - now, v) for k, (t, v) in out.items()}

    def snapshot(self, dropped: int = 0, display_key: str = "display_fps") -> dict[str, Any]:
        """Current figures as plain JSON-ready values."""
        now = time.perf_counter()
        with self._lock:
            gap_s = self.gap_s + (now - self._gap_since if self._gap_since is not None else 0.0)
            return {
                "frames": self.display.count,
                "captured": self.capture.count,
                "forwarded": self.forward.count,
                "capture_fps": round(self.capture.rate() or self.capture.overall(), 3),
                "forward_fps": round(self.forward.rate() or self.forward.overall(), 3),
                display_key: round(self.display.rate() or self.display.overall(), 3),
                "capture_fps_overall": round(self.capture.overall(), 3),
                "forward_fps_overall": round(self.forward.overall(), 3),
                "dropped": int(dropped),
                "errors": self.errors,
                "gaps": self.gaps,
                "gap_s": round(gap_s, 3),
                "skipped_frames": self.skipped_frames,
                "forward_ms": {k: round(v, 3) for k, v in self.forward_ms.summary().items()},
                "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.summary().items()},
                "elapsed_s": round(now - self.started, 3),
            }
