"""The unit reducer (live/units.py): exact against brute force, exact under any split and merge order, saved and loaded.

Seeded random maps (with ties, dead units, NaNs and infinities) for the pure tests; the bundled network tapped
on a clip the test writes for the real one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from live.errors import LiveError, UsageError
from live.receptive import BoxMap
from live.units import (
    HIST_BINS,
    HIST_EDGES,
    FrameInfo,
    Record,
    StateError,
    UnitOptions,
    UnitReducer,
    hist_bins,
)
from tests.helpers import decoded_frames, write_clip

Frame = tuple[FrameInfo, dict[str, np.ndarray], np.ndarray | None]
LAYERS = {"conv/1:0": 6, "head": 4}


def random_frames(seed: int = 0, sources: Sequence[str] = ("b.mp4", "a.mp4", "camera 0"), per: int = 14) -> list[Frame]:
    """Frames of three sources at 10 fps: maps with ties (values on a 0.25 grid), a dead unit, images to cut."""
    rng = np.random.default_rng(seed)
    frames: list[Frame] = []
    for source in sources:
        for i in range(per):
            conv = np.round(rng.standard_normal((6, 5, 7)) * 4) / 4
            conv[2] = np.minimum(conv[2], 0)  # never positive: dead at 0
            conv[3] = 1.0  # the same score on every frame: ties everywhere
            head = rng.standard_normal((4, 2, 3)) * 10 ** rng.uniform(-4, 4, (4, 1, 1))
            image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
            info = FrameInfo(source, i * 2, i * 2 / 10)  # every second frame sampled
            frames.append((info, {"conv/1:0": conv.astype(np.float32), "head": head.astype(np.float32)}, image))
    order = rng.permutation(len(frames))  # sources interleaved
    return [frames[i] for i in order]


def reduce(frames: Sequence[Frame], options: UnitOptions, layers: dict[str, int] = LAYERS) -> UnitReducer:
    reducer = UnitReducer(layers, options)
    for info, maps, image in frames:
        reducer.update(info, maps, image)
    return reducer


def brute_top(frames: Sequence[Frame], layer: str, unit: int, options: UnitOptions) -> list[tuple]:
    """The top-k by the rule written out: each (source, window)'s best frame, then the k best of those."""
    best: dict[tuple[str, int], tuple] = {}
    for info, maps, _ in frames:
        m = maps[layer][unit]
        flat = int(np.argmax(m))
        score = float(m.reshape(-1)[flat])
        y, x = divmod(flat, m.shape[1])
        window = info.frame if options.gap_s == 0 else math.floor(info.time_s / options.gap_s)
        rec = (-score, info.source, info.frame, info.time_s, y, x)
        key = (info.source, window)
        if key not in best or rec < best[key]:
            best[key] = rec
    return sorted(best.values())[: options.k]


def as_tuples(records: list[Record]) -> list[tuple]:
    return [(-r.score, r.source, r.frame, r.time_s, r.y, r.x) for r in records]


def assert_same(a: UnitReducer, b: UnitReducer, thumbs: bool = True) -> None:
    """Identical top-k (records, boxes and thumbnails), counts, maxima, histograms, sparsity; mean and m2 to 1e-9."""
    assert list(a.layers) == list(b.layers)
    for name in a.layers:
        la, lb = a.layers[name], b.layers[name]
        assert la.frames == lb.frames
        np.testing.assert_array_equal(la.count, lb.count)
        np.testing.assert_array_equal(la.max, lb.max)
        np.testing.assert_array_equal(la.nonpos, lb.nonpos)
        np.testing.assert_array_equal(la.hist, lb.hist)
        np.testing.assert_array_equal(la.sparsity(), lb.sparsity())
        np.testing.assert_allclose(la.mean, lb.mean, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(la.m2, lb.m2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(la.std(), lb.std(), rtol=1e-9, atol=1e-12)
        for unit in range(la.units):
            ra, rb = la.top(unit), lb.top(unit)
            assert ra == rb, f"{name} unit {unit}"
            if thumbs:
                for x, y in zip(ra, rb, strict=True):
                    same = (x.thumb is None and y.thumb is None) or (
                        x.thumb is not None and y.thumb is not None and np.array_equal(x.thumb, y.thumb)
                    )
                    assert same, f"{name} unit {unit}: the thumbnails of {x} differ"


# ----------------------------------------------------------------------------- options and values


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[("k", 0), ("k", 1001), ("k", 2.0), ("k", True), ("gap_s", -1.0), ("gap_s", math.inf)],
        *[("gap_s", math.nan), ("dead_at", math.nan), ("thumb", 7), ("thumb", 513)],
    ],
)
def test_options_name_the_bad_value(field: str, value: object) -> None:
    with pytest.raises(UsageError, match=field) as info:
        UnitOptions(**{field: value})
    assert "\n" not in str(info.value)
    assert repr(value) in str(info.value)


def test_bad_updates_are_one_line_usage_errors() -> None:
    reducer = UnitReducer({"a": 3})
    info = FrameInfo("s", 0, 0.0)
    with pytest.raises(UsageError, match="'b'"):
        reducer.update(info, {"b": np.zeros((3, 2, 2), np.float32)}, None)
    with pytest.raises(UsageError, match=r"\(3, H, W\).*\(4, 2, 2\)"):
        reducer.update(info, {"a": np.zeros((4, 2, 2), np.float32)}, None)
    with pytest.raises(UsageError, match="uint8"):
        reducer.update(info, {"a": np.zeros((3, 2, 2), np.float32)}, np.zeros((4, 4, 3), np.float32))
    with pytest.raises(UsageError, match="frame index"):
        FrameInfo("s", -1, 0.0)
    with pytest.raises(UsageError, match="frame time"):
        FrameInfo("s", 0, math.nan)
    with pytest.raises(UsageError, match="units"):
        UnitReducer({"a": 0})
    assert reducer.layers["a"].frames == 0  # nothing half-applied


def test_hist_edges_are_fixed_and_symmetric() -> None:
    assert HIST_EDGES.dtype == np.float64 and len(HIST_EDGES) == HIST_BINS + 1
    assert HIST_EDGES[0] == -math.inf and HIST_EDGES[-1] == math.inf
    np.testing.assert_array_equal(HIST_EDGES, -HIST_EDGES[::-1])
    assert 0.0 in HIST_EDGES and np.all(np.diff(HIST_EDGES) > 0)
    assert not HIST_EDGES.flags.writeable


def test_histogram_bins_every_kind_of_float32() -> None:
    """Edges exactly, values beside them, zeros of both signs, subnormals, the largest floats, infinities."""
    finite = HIST_EDGES[1:-1].astype(np.float32)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-39, -1e-39, 3.4e38, -3.4e38, np.inf, -np.inf], np.float32)
    values = np.concatenate([finite, np.nextafter(finite, np.float32(np.inf)), np.nextafter(finite, -np.inf), special])
    rng = np.random.default_rng(5)
    values = np.concatenate([values, (rng.standard_normal(5000) * 10 ** rng.uniform(-6, 6, 5000)).astype(np.float32)])
    values = values.astype(np.float32)
    reducer = UnitReducer({"a": 1}, UnitOptions(k=1))
    reducer.update(FrameInfo("s", 0, 0.0), {"a": values.reshape(1, 1, -1)}, None)
    state = reducer.layers["a"]
    expected = np.bincount(hist_bins(values), minlength=HIST_BINS)
    np.testing.assert_array_equal(state.hist[0], expected)
    assert state.nonpos[0] == np.count_nonzero(values <= 0)
    assert state.count[0] == values.size and state.max[0] == np.inf


def test_histograms_of_many_units_and_values_equal_the_reference_rule() -> None:
    """More than 256 units (counted in groups) of 600 values (the per-key counting path): every kind of float32."""
    finite = HIST_EDGES[1:-1].astype(np.float32)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, np.inf, -np.inf], np.float32)
    edges = np.concatenate([finite, np.nextafter(finite, np.float32(np.inf)), np.nextafter(finite, -np.inf), special])
    rng = np.random.default_rng(8)
    maps = (rng.standard_normal((300, 600)) * 10 ** rng.uniform(-6, 6, (300, 600))).astype(np.float32)
    for unit in range(300):  # the edges and special values in every unit, at different places
        maps[unit, rng.permutation(600)[: edges.size]] = edges
    maps[7] = 0.0
    reducer = UnitReducer({"a": 300}, UnitOptions(k=1))
    for frame in range(2):
        reducer.update(FrameInfo("s", frame, float(frame)), {"a": maps.reshape(300, 20, 30)}, None)
    state = reducer.layers["a"]
    expected = np.stack([np.bincount(hist_bins(v), minlength=HIST_BINS) for v in maps]) * 2
    np.testing.assert_array_equal(state.hist, expected)
    np.testing.assert_array_equal(state.nonpos, np.count_nonzero(maps <= 0, axis=1) * 2)


def test_nan_values_are_left_out_of_every_statistic() -> None:
    maps = np.array([[[1.0, np.nan], [-2.0, 3.0]], [[np.nan, np.nan], [np.nan, np.nan]]], np.float32)
    reducer = UnitReducer({"a": 2}, UnitOptions(k=2))
    reducer.update(FrameInfo("s", 0, 0.0), {"a": maps}, None)
    state = reducer.layers["a"]
    np.testing.assert_array_equal(state.count, [3, 0])
    np.testing.assert_allclose(state.mean, [2 / 3, 0])
    np.testing.assert_allclose(state.std(), [np.std([1.0, -2.0, 3.0]), 0])
    np.testing.assert_array_equal(state.max, [3.0, -np.inf])
    np.testing.assert_array_equal(state.nonpos, [1, 0])
    assert state.hist.sum() == 3
    assert [(r.score, r.y, r.x) for r in state.top(0)] == [(3.0, 1, 1)]
    assert state.top(1) == []
    assert state.dead(0.0).tolist() == [False, True]


# ----------------------------------------------------------------------------- brute force


@pytest.mark.parametrize("gap_s", [0.0, 0.25, 1.0, 100.0])
@pytest.mark.parametrize("k", [1, 3, 9])
def test_top_k_and_statistics_equal_brute_force(gap_s: float, k: int) -> None:
    frames = random_frames()
    options = UnitOptions(k=k, gap_s=gap_s)
    reducer = reduce(frames, options)
    for name, layer in reducer.layers.items():
        everything = np.stack([maps[name] for _, maps, _ in frames])  # (N, C, H, W)
        values = everything.transpose(1, 0, 2, 3).reshape(layer.units, -1)
        assert layer.frames == len(frames)
        np.testing.assert_array_equal(layer.count, values.shape[1])
        np.testing.assert_array_equal(layer.max, values.max(axis=1).astype(np.float64))
        np.testing.assert_array_equal(layer.nonpos, np.count_nonzero(values <= 0, axis=1))
        hist = np.stack([np.bincount(hist_bins(v), minlength=HIST_BINS) for v in values])
        np.testing.assert_array_equal(layer.hist, hist)
        v64 = values.astype(np.float64)
        np.testing.assert_allclose(layer.mean, v64.mean(axis=1), rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(layer.std(), v64.std(axis=1), rtol=1e-9, atol=1e-15)
        for unit in range(layer.units):
            assert as_tuples(layer.top(unit)) == brute_top(frames, name, unit, options), f"{name} unit {unit}"
    dead = reducer.layers["conv/1:0"].dead(0.0)
    assert dead.tolist() == [False, False, True, False, False, False]


def test_gap_keeps_one_frame_per_window() -> None:
    """gap_s = 0: the k best frames; gap_s > 0: never two frames of one (source, window)."""
    frames = random_frames(seed=3, sources=("only",), per=40)
    frames.sort(key=lambda f: f[0].frame)
    every = reduce(frames, UnitOptions(k=9, gap_s=0.0)).layers["head"]
    spaced = reduce(frames, UnitOptions(k=9, gap_s=1.0)).layers["head"]
    for unit in range(4):
        scores = sorted((float(maps["head"][unit].max()) for _, maps, _ in frames), reverse=True)
        assert [r.score for r in every.top(unit)] == scores[:9]
        windows = [math.floor(r.time_s / 1.0) for r in spaced.top(unit)]
        assert len(windows) == len(set(windows)) == 8  # 40 frames every 0.2 s: 8 windows
    # the constant unit ties on every frame: the earliest frames win
    conv = reduce(frames, UnitOptions(k=3, gap_s=0.0)).layers["conv/1:0"]
    assert [r.frame for r in conv.top(3)] == [0, 2, 4]


# ----------------------------------------------------------------------------- merge


def splits(frames: list[Frame], rng: np.random.Generator) -> dict[str, list[list[Frame]]]:
    n = len(frames)
    by_source: dict[str, list[Frame]] = {}
    for f in frames:
        by_source.setdefault(f[0].source, []).append(f)
    assign = rng.integers(0, 4, n)
    return {
        "halves": [frames[: n // 2], frames[n // 2 :]],
        "chunks of 5": [frames[i : i + 5] for i in range(0, n, 5)],
        "interleaved": [frames[0::3], frames[1::3], frames[2::3]],  # every window split across parts
        "random": [[f for f, a in zip(frames, assign, strict=True) if a == p] for p in range(4)],
        "by source": list(by_source.values()),
        "one empty": [frames, []],
    }


def merge_tree(parts: list[UnitReducer], how: str, rng: np.random.Generator) -> UnitReducer:
    if how == "left fold":
        out = parts[0]
        for p in parts[1:]:
            out = out.merge(p)
        return out
    if how == "right fold":
        out = parts[-1]
        for p in reversed(parts[:-1]):
            out = p.merge(out)
        return out
    if how == "pairs":
        level = list(parts)
        while len(level) > 1:
            level = [level[i].merge(level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        return level[0]
    pool = list(parts)  # random tree
    while len(pool) > 1:
        i, j = sorted(rng.choice(len(pool), 2, replace=False))
        b, a = pool.pop(j), pool.pop(i)
        pool.append(a.merge(b) if rng.random() < 0.5 else b.merge(a))
    return pool[0]


@pytest.mark.parametrize("gap_s", [0.0, 0.5])
def test_merge_equals_one_pass_for_every_split_and_tree(gap_s: float) -> None:
    frames = random_frames(seed=1)
    options = UnitOptions(k=4, gap_s=gap_s, thumb=8)
    whole = reduce(frames, options)
    rng = np.random.default_rng(2)
    for split_name, parts in splits(frames, rng).items():
        reduced = [reduce(p, options) for p in parts]
        for how in ("left fold", "right fold", "pairs", "random tree"):
            merged = merge_tree(reduced, how, rng)
            try:
                assert_same(merged, whole)
            except AssertionError as exc:
                raise AssertionError(f"split {split_name}, merged by {how}: {exc}") from exc


def test_merge_is_commutative_and_leaves_its_inputs_alone() -> None:
    frames = random_frames(seed=4)
    a, b = reduce(frames[:20], UnitOptions(k=3)), reduce(frames[20:], UnitOptions(k=3))
    before = [r for r in a.layers["head"].top(0)]
    ab, ba = a.merge(b), b.merge(a)
    assert_same(ab, ba)
    assert a.layers["head"].top(0) == before and a.layers["head"].frames == 20


def test_copy_is_independent() -> None:
    frames = random_frames(seed=12, per=6)
    reducer = reduce(frames[:9], UnitOptions(k=3))
    snapshot = reducer.copy()
    assert_same(snapshot, reducer)
    for info, maps, image in frames[9:]:
        reducer.update(info, maps, image)
    assert_same(snapshot, reduce(frames[:9], UnitOptions(k=3)))
    assert_same(reducer, reduce(frames, UnitOptions(k=3)))


def test_merge_refuses_different_layers_or_options() -> None:
    a = UnitReducer({"x": 2}, UnitOptions(k=3))
    with pytest.raises(UsageError, match="options"):
        a.merge(UnitReducer({"x": 2}, UnitOptions(k=4)))
    with pytest.raises(UsageError, match="layers"):
        a.merge(UnitReducer({"x": 3}, UnitOptions(k=3)))
    with pytest.raises(UsageError, match="layers"):
        a.merge(UnitReducer({"y": 2}, UnitOptions(k=3)))


def test_reset_forgets_one_layer_or_all() -> None:
    reducer = reduce(random_frames(seed=6, per=3), UnitOptions(k=2))
    reducer.reset("head")
    assert reducer.layers["head"].frames == 0 and reducer.layers["head"].top(0) == []
    assert reducer.layers["head"].max[0] == -math.inf and reducer.layers["head"].hist.sum() == 0
    assert reducer.layers["conv/1:0"].frames == 9
    reducer.reset()
    assert reducer.layers["conv/1:0"].frames == 0 and reducer.layers["conv/1:0"].count.sum() == 0
    with pytest.raises(UsageError, match="nope"):
        reducer.reset("nope")


# ----------------------------------------------------------------------------- boxes and thumbnails


def test_thumbnails_show_the_box_and_are_shared() -> None:
    """Default boxes are the proportional cells; the thumbnail is the frame under the box, scaled to fit."""
    image = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    maps = np.zeros((3, 4, 5), np.float32)
    maps[0, 1, 2] = 1.0
    maps[1, 1, 2] = 2.0  # the same cell: one thumbnail array
    maps[2, 3, 4] = 5.0
    reducer = UnitReducer({"a": 3}, UnitOptions(k=1, thumb=16))
    reducer.update(FrameInfo("s", 0, 0.0), {"a": maps}, image)
    r0, r1, r2 = (reducer.layers["a"].top(u)[0] for u in range(3))
    assert r0.box == (80, 30, 120, 60) and (r0.y, r0.x) == (1, 2)
    assert r2.box == (160, 90, 200, 120)
    assert r0.thumb is r1.thumb and not r0.thumb.flags.writeable
    expected = cv2.resize(image[30:60, 80:120], (16, 12), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(r0.thumb, expected)
    boxer = BoxMap(None, (10, 10), (50, 0, 100, 120), (200, 120))  # a centre crop: cells of the crop
    reducer.update(FrameInfo("s", 1, 1.0), {"a": maps * 2}, image, {"a": boxer})
    assert reducer.layers["a"].top(2)[0].box == (130, 90, 150, 120)
    no_image = UnitReducer({"a": 3}, UnitOptions(k=1))
    no_image.update(FrameInfo("s", 0, 0.0, size=(200, 120)), {"a": maps}, None)
    assert no_image.layers["a"].top(0)[0].box == (80, 30, 120, 60)
    assert no_image.layers["a"].top(0)[0].thumb is None


def big_box_frames(seed: int, count: int) -> list[Frame]:
    """Frames whose boxes (proportional cells of 40 x 30 px) are larger than 16-px thumbnails: cut when read."""
    rng = np.random.default_rng(seed)
    frames: list[Frame] = []
    for i in range(count):
        maps = (np.round(rng.standard_normal((5, 4, 4)) * 4) / 4).astype(np.float32)
        image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        frames.append((FrameInfo("clip.mp4", i, i / 10), {"a": maps}, image))
    return frames


def reduce_big(frames: Sequence[Frame], pending_bytes: int, options: UnitOptions | None = None) -> UnitReducer:
    reducer = UnitReducer({"a": 5}, options or UnitOptions(k=3, gap_s=0.25, thumb=16))
    reducer.pending_bytes = pending_bytes
    for info, maps, image in frames:
        reducer.update(info, maps, image)
        assert sum(px.nbytes for ref in reducer._pending if (px := ref()) is not None) <= pending_bytes
    return reducer


def pending(reducer: UnitReducer) -> int:
    """How many top-k slots hold a thumbnail not cut yet."""
    from live.units import _Thumb

    slots = [t for layer in reducer.layers.values() for t in layer._top.thumb.ravel().tolist()]
    return sum(isinstance(t, _Thumb) and t.pixels is not None for t in slots)


@pytest.mark.parametrize("budget", [10**9, 3 * 120 * 160 * 3, 1])
def test_thumbnails_cut_when_read_equal_thumbnails_cut_at_once(budget: int) -> None:
    """Whatever the bound on pending pixels, the thumbnails are the frame under the box, pixel for pixel."""
    frames = big_box_frames(3, 30)
    eager = reduce_big(frames, 0)
    assert pending(eager) == 0
    lazy = reduce_big(frames, budget)
    if budget > 10**6:
        assert pending(lazy) > 0  # nothing read yet: nothing cut
    assert_same(lazy, eager)
    assert pending(lazy) == 0  # top() cut them all
    images = {info.frame: image for info, _, image in frames}
    for unit in range(5):
        for record in lazy.layers["a"].top(unit):
            x0, y0, x1, y1 = record.box
            want = cv2.resize(images[record.frame][y0:y1, x0:x1], (16, 12), interpolation=cv2.INTER_AREA)
            np.testing.assert_array_equal(record.thumb, want)
            assert not record.thumb.flags.writeable


def test_pending_pixels_go_with_the_records_and_pickles_carry_cut_thumbnails() -> None:
    import gc
    import pickle

    frames = big_box_frames(4, 2)
    first, second = frames
    reducer = UnitReducer({"a": 5}, UnitOptions(k=1, gap_s=0.0, thumb=16))
    reducer.update(first[0], first[1], first[2])
    held = reducer._pending[0]
    assert held() is not None and held().image is not None
    reducer.update(second[0], {"a": np.abs(first[1]["a"]) + 100}, second[2])  # beats every unit's record
    gc.collect()
    assert held() is None  # no record of the first frame left: its pixels are gone, never scaled
    again = pickle.loads(pickle.dumps(reducer))
    assert pending(again) == 0 and not again._pending
    assert_same(again, reducer)
    tops = [again.layers["a"].top(u)[0] for u in range(5)]
    by_box: dict[tuple[int, ...], np.ndarray] = {}
    for record in tops:  # one array per box still, after the pickle
        assert by_box.setdefault(record.box, record.thumb) is record.thumb


def test_merged_and_copied_states_cut_pending_thumbnails_alike() -> None:
    frames = big_box_frames(5, 24)
    eager = [reduce_big(part, 0) for part in (frames[::2], frames[1::2])]
    lazy = [reduce_big(part, 10**9) for part in (frames[::2], frames[1::2])]
    merged = lazy[0].merge(lazy[1])
    copied = merged.copy()
    assert pending(merged) > 0
    assert_same(copied, eager[0].merge(eager[1]))
    assert_same(merged, eager[1].merge(eager[0]))


# ----------------------------------------------------------------------------- files


def saved(tmp_path: Path, name: str = "state") -> tuple[UnitReducer, Path]:
    frames = random_frames_named(7, 6)
    reducer = reduce(frames, UnitOptions(k=3, gap_s=0.3, thumb=16), {"stem/conv:0": 6, "head": 4})
    folder = tmp_path / name
    reducer.save(folder)
    return reducer, folder


def random_frames_named(seed: int, per: int) -> list[Frame]:
    """:func:`random_frames` under a layer name with '/' and ':', and a frame where every unit peaks at one cell."""
    frames = [(i, {"stem/conv:0": m["conv/1:0"], "head": m["head"]}, img) for i, m, img in random_frames(seed, per=per)]
    _, maps, image = frames[len(frames) // 2]
    peak = maps["stem/conv:0"].copy()
    peak[:, 1, 1] = 100.0
    frames.insert(0, (FrameInfo("peak.mp4", 0, 0.0), {"stem/conv:0": peak, "head": maps["head"]}, image))
    return frames


def test_save_and_load_give_back_the_same_state(tmp_path: Path) -> None:
    frames = random_frames_named(7, 6)
    options = UnitOptions(k=3, gap_s=0.3, thumb=16)
    reducer = reduce(frames[:12], options, {"stem/conv:0": 6, "head": 4})
    folder = tmp_path / "state"
    reducer.save(folder)
    loaded = UnitReducer.load(folder)
    assert loaded.options == options and loaded.sources == reducer.sources
    assert_same(loaded, reducer)
    # the loaded state goes on as the original does
    for info, maps, image in frames[12:]:
        reducer.update(info, maps, image)
        loaded.update(info, maps, image)
    assert_same(loaded, reducer)
    assert_same(loaded, reduce(frames, options, {"stem/conv:0": 6, "head": 4}))


def test_saved_files_are_what_the_manifest_names(tmp_path: Path) -> None:
    reducer, folder = saved(tmp_path)
    manifest = reducer.to_manifest()
    json.dumps(manifest, allow_nan=False)
    assert list(manifest["layers"]) == ["stem/conv:0", "head"]
    conv = manifest["layers"]["stem/conv:0"]
    assert conv["units"] == 6 and conv["k"] == 3 and len(conv["top"]) == 6
    shared = 0
    for li, name in enumerate(manifest["layers"]):
        for unit, records in enumerate(manifest["layers"][name]["top"]):
            top = reducer.layers[name].top(unit)
            assert [r["score"] for r in records] == [r.score for r in top]
            for rank, (entry, record) in enumerate(zip(records, top, strict=True)):
                assert set(entry) == {"source", "frame", "time_s", "score", "y", "x", "thumb"}
                assert entry["thumb"] == f"thumbs/{li}/{unit}/{rank}.png"
                png = cv2.imdecode(np.frombuffer((folder / entry["thumb"]).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
                np.testing.assert_array_equal(png, record.thumb)
                shared += (folder / entry["thumb"]).stat().st_nlink > 1
    assert shared > 0  # units that share a box share one file
    loaded = UnitReducer.load(folder)
    pairs = [(u, r) for u in range(6) for r in loaded.layers["stem/conv:0"].top(u)]
    assert len({id(r.thumb) for _, r in pairs}) < len(pairs)  # and one array once loaded
    assert not (tmp_path / "state").with_name(".state.tmp").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]  # no temporary folders left


def test_stats_dict_is_strict_json(tmp_path: Path) -> None:
    reducer = reduce(random_frames(seed=8, per=4), UnitOptions(k=2))
    reducer.layers["head"].reset()
    stats = reducer.stats_dict()
    text = json.dumps(stats, allow_nan=False)
    back = json.loads(text)["layers"]
    conv = back["conv/1:0"]
    assert conv["frames"] == 12 and len(conv["units"]) == 6 and len(conv["hist"]) == 6
    assert conv["hist_edges"][0] == "-inf" and conv["hist_edges"][-1] == "inf" and len(conv["hist_edges"]) == 53
    assert [u["dead"] for u in conv["units"]] == [False, False, True, False, False, False]
    layer = reducer.layers["conv/1:0"]
    assert conv["units"][1] == {
        "unit": 1,
        "count": int(layer.count[1]),
        "mean": float(layer.mean[1]),
        "std": float(layer.std()[1]),
        "max": float(layer.max[1]),
        "sparsity": float(layer.sparsity()[1]),
        "dead": False,
    }
    assert back["head"]["units"][0] == {
        "unit": 0,
        "count": 0,
        "mean": None,
        "std": None,
        "max": None,
        "sparsity": None,
        "dead": True,
    }


def test_pickled_state_is_the_same_state() -> None:
    import pickle

    reducer = reduce(random_frames(seed=9, per=4), UnitOptions(k=2, thumb=8))
    assert_same(pickle.loads(pickle.dumps(reducer)), reducer)


def test_save_replaces_a_state_and_nothing_else(tmp_path: Path) -> None:
    reducer, folder = saved(tmp_path)
    small = reduce(random_frames_named(1, 1), UnitOptions(k=1), {"stem/conv:0": 6, "head": 4})
    small.save(folder)
    assert_same(UnitReducer.load(folder), small)
    assert not (folder / "thumbs" / "0" / "0" / "2.png").exists()  # the old state's files are gone
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"x")
    with pytest.raises(UsageError, match="not a unit state"):
        reducer.save(other)
    assert (other / "cat.jpg").read_bytes() == b"x"
    with pytest.raises(UsageError, match="does not exist"):
        reducer.save(tmp_path / "missing" / "state")


def _damage(folder: Path, how: str) -> None:
    state = json.loads((folder / "state.json").read_text())
    if how == "no state.json":
        (folder / "state.json").unlink()
    elif how == "truncated state.json":
        (folder / "state.json").write_text((folder / "state.json").read_text()[:200])
    elif how == "not ours":
        (folder / "state.json").write_text('{"format": "something else"}')
    elif how == "future version":
        state["version"] = 99
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "bad option":
        state["options"]["k"] = 0
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "missing key":
        del state["layers"][0]["top"]
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "records out of order":
        top = state["layers"][1]["top"][0]
        top[0], top[1] = top[1], top[0]
        top[0]["thumb"], top[1]["thumb"] = top[1]["thumb"], top[0]["thumb"]
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "unknown source":
        state["layers"][1]["top"][0][0]["source"] = "nowhere"
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "thumb path outside":
        state["layers"][1]["top"][0][0]["thumb"] = "../../etc/passwd"
        (folder / "state.json").write_text(json.dumps(state))
    elif how == "no arrays":
        (folder / "arrays.npz").unlink()
    elif how == "truncated arrays":
        (folder / "arrays.npz").write_bytes((folder / "arrays.npz").read_bytes()[:100])
    elif how == "wrong array shape":
        with np.load(folder / "arrays.npz") as npz:
            arrays = {k: npz[k] for k in npz.files}
        arrays["1.hist"] = arrays["1.hist"][:, :10]
        np.savez(folder / "arrays.npz", **arrays)
    elif how == "missing thumbnail":
        (folder / "thumbs" / "1" / "0" / "0.png").unlink()
    elif how == "broken thumbnail":
        path = folder / "thumbs" / "1" / "0" / "0.png"
        path.unlink()  # it may be a hard link: write a new file
        path.write_bytes(b"\x89PNG broken")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        *("no state.json", "truncated state.json", "not ours", "future version", "bad option", "missing key"),
        *("records out of order", "unknown source", "thumb path outside", "no arrays", "truncated arrays"),
        *("wrong array shape", "missing thumbnail", "broken thumbnail"),
    ],
)
def test_damaged_state_is_one_line_error(tmp_path: Path, how: str) -> None:
    _, folder = saved(tmp_path)
    _damage(folder, how)
    with pytest.raises(StateError) as info:
        UnitReducer.load(folder)
    message = str(info.value)
    assert isinstance(info.value, LiveError)
    assert "\n" not in message and str(folder) in message, message
    assert "Traceback" not in message


def test_missing_state_folder_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such folder"):
        UnitReducer.load(tmp_path / "nothing")


# ----------------------------------------------------------------------------- a real network on real clips


REAL_LAYERS = {"blocks.2.depthwise": 144, "head": 1280}


@pytest.fixture(scope="module")
def tapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Frame], dict[str, BoxMap]]:
    """The bundled network tapped at a 144x56x56 and a 1280x7x7 layer on every frame of two clips written here."""
    import live
    from live.maps import blob_to_maps
    from live.receptive import box_maps

    folder = tmp_path_factory.mktemp("clips")
    clips = [write_clip(folder / "moving.avi", frames=24), write_clip(folder / "still.avi", frames=12, still=True)]
    net = live.Network()
    frames: list[Frame] = []
    for clip in clips:
        for index, time_s, image in decoded_frames(clip):
            taps = net.tap(image, list(REAL_LAYERS))
            maps = {name: np.array(blob_to_maps(blob)) for name, blob in taps.items()}
            frames.append((FrameInfo(str(clip), index, time_s), maps, image))
    assert len(frames) == 36
    return frames, box_maps(net.model, REAL_LAYERS, (96, 72))


@pytest.mark.opencv
@pytest.mark.parametrize("gap_s", [0.0, 0.2])
def test_real_network_merges_exactly(tapped: tuple[list[Frame], dict[str, BoxMap]], gap_s: float) -> None:
    """One pass over both clips equals brute force, and every split merged in every tree; thumbnails included."""
    frames, boxes = tapped
    options = UnitOptions(k=5, gap_s=gap_s, thumb=24)

    def run(part: Sequence[Frame]) -> UnitReducer:
        reducer = UnitReducer(REAL_LAYERS, options)
        for info, maps, image in part:
            reducer.update(info, maps, image, boxes)
        return reducer

    whole = run(frames)
    for name, layer in whole.layers.items():
        for unit in range(0, layer.units, 37):
            assert as_tuples(layer.top(unit)) == brute_top(frames, name, unit, options)
            for record in layer.top(unit):
                _, maps, image = next(f for f in frames if (f[0].source, f[0].frame) == (record.source, record.frame))
                assert record.box == boxes[name].box(record.y, record.x, maps[name].shape[1:])
                x0, y0, x1, y1 = record.box
                assert record.thumb is not None and max(record.thumb.shape[:2]) <= 24
                want = image[y0:y1, x0:x1]
                if max(want.shape[:2]) > 24:
                    scale = 24 / max(want.shape[:2])
                    size = (max(1, round(want.shape[1] * scale)), max(1, round(want.shape[0] * scale)))
                    want = cv2.resize(want, size, interpolation=cv2.INTER_AREA)
                np.testing.assert_array_equal(record.thumb, want)
    rng = np.random.default_rng(11)
    for split_name, parts in splits(frames, rng).items():
        if split_name not in ("interleaved", "random", "by source"):  # the pure tests go through every split
            continue
        reduced = [run(p) for p in parts]
        for how in ("left fold", "random tree"):
            try:
                assert_same(merge_tree(reduced, how, rng), whole)
            except AssertionError as exc:
                raise AssertionError(f"split {split_name}, merged by {how}: {exc}") from exc


def test_units_feed_bounds_its_share_of_the_time() -> None:
    """The live-units thread waits d / max_share after an update of d seconds, unless max_rate waits longer."""
    from live.unitfeed import MAX_RATE, MAX_SHARE, UnitsFeed

    def nothing() -> str:
        raise AssertionError("not called")

    feed = UnitsFeed(UnitOptions(), nothing, nothing)  # type: ignore[arg-type]
    assert (feed.max_rate, feed.max_share) == (MAX_RATE, MAX_SHARE)
    assert feed._rest(0.020) == pytest.approx(0.020 / MAX_SHARE)  # a slow update: 2.5 a second at most
    assert feed._rest(0.001) < 1 / MAX_RATE  # a cheap one: max_rate binds
    assert UnitsFeed(UnitOptions(), nothing, nothing, max_share=None)._rest(1.0) == 0.0  # type: ignore[arg-type]
    assert feed.describe() == {"layer": None, "frames": 0, "skipped": 0}
