"""What an analysis writes: ``manifest.json``, ``stats.json``, the thumbnails and ``index.html``, a static gallery.

The gallery opens from the file system (``file://``) with no server and no
external resource: per layer, per unit, the top-k thumbnails with score,
source and time; and the per-unit statistics as a table that sorts when a
column header is clicked (a few lines of inline JavaScript), the unit cards
following the table's order. The page also sorts as its address says: ``index.html#sort=mean`` (ascending) or
``#sort=-mean`` (descending), for links and for the tests' headless browser.

Every file is written atomically (:func:`live.output.write_atomic`): a reader
never sees half a manifest or half a page.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from live.output import write_atomic, write_json

MANIFEST = "manifest.json"
STATS = "stats.json"
INDEX = "index.html"
STATE = "state"
STAT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("unit", "unit"),
    ("mean", "mean"),
    ("std", "std"),
    ("max", "max"),
    ("sparsity", "sparsity"),
    ("dead", "dead"),
    ("count", "values"),
)
"""The statistics table's columns: (key in ``stats.json``'s unit records, header)."""


def write_analysis(out: Path, reducer: Any, report: Mapping[str, Any]) -> dict[str, Path]:
    """Write a finished analysis under ``out``: the reducer's state and thumbnails, manifest, stats, gallery.

    Args:
        out: the output folder (it exists).
        reducer: the merged :class:`live.units.UnitReducer`.
        report: :attr:`live.analyze.Analysis.report` (``model``, ``inputs``, ``skipped``, ``frames``, ``options``).
    Returns:
        ``{"manifest", "stats", "index", "state"}``: the paths written.
    Raises:
        OutputError: a write failed (nothing half-written is left under its name).
    """
    reducer.save(out / STATE)
    manifest = _manifest(reducer, report)
    stats = {"model": report.get("model"), **_finite(reducer.stats_dict())}
    write_json(out / MANIFEST, manifest, "manifest")
    write_json(out / STATS, stats, "statistics")
    page = render(manifest, stats)
    write_atomic(out / INDEX, lambda tmp: tmp.write_text(page, encoding="utf-8"), "gallery")
    return {"manifest": out / MANIFEST, "stats": out / STATS, "index": out / INDEX, "state": out / STATE}


def _manifest(reducer: Any, report: Mapping[str, Any]) -> dict[str, Any]:
    """The reducer's manifest (thumbnail paths made relative to the output folder) and the run's facts."""
    own = reducer.to_manifest()
    for layer in own["layers"].values():
        for records in layer["top"]:
            for record in records:
                if record.get("thumb"):
                    record["thumb"] = f"{STATE}/{record['thumb']}"
    return {
        "model": report.get("model"),
        "layers": own["layers"],
        "options": report.get("options", {}),
        "inputs": list(report.get("inputs", [])),
        "skipped": list(report.get("skipped", [])),
        "frames": int(report.get("frames", 0)),
    }


def _finite(data: Any) -> Any:
    """JSON-safe: infinities and NaN as strings (``"inf"``, ``"-inf"``, ``"nan"``), recursively."""
    if isinstance(data, float) and not math.isfinite(data):
        return str(data)
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


# --------------------------------------------------------------------------
# The page


_CSS = """
body{font:14px system-ui,sans-serif;margin:0;background:#14161a;color:#e4e6ea}
header{padding:12px 20px;background:#1d2026;border-bottom:1px solid #333}
h1{font-size:20px;margin:0 0 4px} h2{font-size:17px;margin:18px 0 8px} h3{font-size:13px;margin:0 0 4px}
a{color:#8cc4ff} .meta{color:#9aa0a8;font-weight:normal}
section.layer{padding:0 20px 20px}
table.stats{border-collapse:collapse;font-variant-numeric:tabular-nums;margin-bottom:12px}
table.stats th{cursor:pointer;user-select:none;background:#262a31;padding:3px 10px;text-align:right;
  position:sticky;top:0}
table.stats th[aria-sort=ascending]::after{content:" \\25B2"}
table.stats th[aria-sort=descending]::after{content:" \\25BC"}
table.stats td{padding:2px 10px;text-align:right;border-bottom:1px solid #262a31}
tr.dead td{color:#e06c6c}
.scroll{max-height:360px;overflow:auto;display:inline-block}
.units{display:flex;flex-wrap:wrap;gap:10px}
.unit{background:#1d2026;border:1px solid #2c3038;border-radius:6px;padding:6px;width:330px}
.unit.dead{border-color:#7a3434}
.tops{display:grid;grid-template-columns:repeat(3,1fr);gap:4px}
figure.top{margin:0;font-size:10px;line-height:1.25;color:#b8bcc4;overflow:hidden}
figure.top img{width:100%;aspect-ratio:1;object-fit:contain;background:#000;image-rendering:pixelated;display:block}
figure.top b{color:#ffd479}
.src{word-break:break-all}
"""

_JS = """
(function(){
  function value(row, i, type){
    var v = row.cells[i].getAttribute('data-v');
    return type === 'num' ? parseFloat(v) : v;
  }
  function sortTable(table, key, descending){
    var heads = table.tHead.rows[0].cells, col = -1;
    for (var i = 0; i < heads.length; i++){
      heads[i].removeAttribute('aria-sort');
      if (heads[i].getAttribute('data-key') === key) col = i;
    }
    if (col < 0) return false;
    var type = heads[col].getAttribute('data-type');
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function(a, b){
      var x = value(a, col, type), y = value(b, col, type);
      var c = x < y ? -1 : x > y ? 1 : 0;
      if (descending) c = -c;
      return c || (value(a, 0, 'num') - value(b, 0, 'num'));
    });
    rows.forEach(function(r){ body.appendChild(r); });
    var index = table.getAttribute('data-index'), grid = document.getElementById('units-' + index);
    if (grid) rows.forEach(function(r){  // the unit cards follow the table's order
      var card = document.getElementById('L' + index + '-u' + r.getAttribute('data-unit'));
      if (card) grid.appendChild(card);
    });
    heads[col].setAttribute('aria-sort', descending ? 'descending' : 'ascending');
    table.setAttribute('data-sort', (descending ? '-' : '') + key);
    return true;
  }
  function fromHash(){
    var m = /(?:^|[#&])sort=(-?)([A-Za-z_]+)/.exec(location.hash);
    if (!m) return;
    document.querySelectorAll('table.stats').forEach(function(t){ sortTable(t, m[2], m[1] === '-'); });
  }
  document.querySelectorAll('table.stats th').forEach(function(th){
    th.addEventListener('click', function(){
      var table = th.closest('table'), key = th.getAttribute('data-key');
      var descending = th.getAttribute('aria-sort') !== 'descending';
      sortTable(table, key, descending);
    });
  });
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
"""


def _num(value: Any, digits: int = 4) -> str:
    """A statistic as shown: 4 significant digits; infinities and NaN as words."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, int):
        return str(value)
    if value is None or not math.isfinite(float(value)):
        return str(value)
    return f"{float(value):.{digits}g}"


def _sort_value(value: Any) -> str:
    """The ``data-v`` a cell sorts by (numbers as JavaScript parses them)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "NaN"
    if isinstance(value, str):
        return {"inf": "Infinity", "-inf": "-Infinity"}.get(value, value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number) if isinstance(value, float) else str(value)


def _time(seconds: float) -> str:
    minutes, rest = divmod(float(seconds), 60.0)
    return f"{int(minutes)}:{rest:05.2f}" if minutes else f"{rest:.2f} s"


def render(manifest: Mapping[str, Any], stats: Mapping[str, Any]) -> str:
    """The gallery page for a manifest and its statistics (see :func:`write_analysis`): one HTML document."""
    esc = html.escape
    model = str(manifest.get("model") or "")
    options = manifest.get("options", {})
    layers = manifest.get("layers", {})
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>live analyze: {esc(Path(model).name or model)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>What each unit responds to</h1>",
        f'<p class="meta" id="summary"><span title="{esc(model)}">{esc(Path(model).name or model)}</span> · '
        f"{int(manifest.get('frames', 0))} frames · "
        f"top {esc(str(options.get('k', '')))} per unit, at most one per {esc(str(options.get('gap_s', '')))} s "
        "of a source</p>",
        "<nav>" + " · ".join(f'<a href="#layer-{i}">{esc(name)}</a>' for i, name in enumerate(layers)) + "</nav>",
    ]
    skipped = manifest.get("skipped") or []
    if skipped:
        items = "".join(f"<li>{esc(str(s.get('source')))}: {esc(str(s.get('reason')))}</li>" for s in skipped)
        parts.append(f'<details class="skipped"><summary>{len(skipped)} skipped</summary><ul>{items}</ul></details>')
    parts.append("</header>")
    stat_layers = stats.get("layers", {})
    for i, (name, layer) in enumerate(layers.items()):
        units = stat_layers.get(name, {}).get("units", [])
        by_unit = {int(u["unit"]): u for u in units}
        parts.append(
            f'<section class="layer" id="layer-{i}" data-layer="{esc(name)}">'
            f'<h2>{esc(name)} <span class="meta">{int(layer.get("units", 0))} units · '
            f"{int(stat_layers.get(name, {}).get('frames', 0))} frames</span></h2>"
        )
        parts.append(_table(i, name, units))
        parts.append(f'<div class="units" id="units-{i}">')
        for unit, records in enumerate(layer.get("top", [])):
            parts.append(_card(i, unit, records, by_unit.get(unit, {})))
        parts.append("</div></section>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _table(index: int, name: str, units: list[Mapping[str, Any]]) -> str:
    esc = html.escape
    heads = "".join(f'<th data-key="{key}" data-type="num">{label}</th>' for key, label in STAT_COLUMNS)
    rows = []
    for u in units:
        cells = []
        for key, _ in STAT_COLUMNS:
            value = u.get(key)
            shown = f'<a href="#L{index}-u{int(u["unit"])}">{int(u["unit"])}</a>' if key == "unit" else _num(value)
            cells.append(f'<td data-v="{esc(_sort_value(value))}">{shown}</td>')
        rows.append(f'<tr data-unit="{int(u["unit"])}"{" class=dead" if u.get("dead") else ""}>{"".join(cells)}</tr>')
    return (
        f'<details open><summary>Statistics of {esc(name)} (click a column to sort)</summary><div class="scroll">'
        f'<table class="stats" data-layer="{esc(name)}" data-index="{index}"><thead><tr>{heads}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _card(index: int, unit: int, records: list[Mapping[str, Any]], stat: Mapping[str, Any]) -> str:
    esc = html.escape
    dead = bool(stat.get("dead"))
    figures = []
    for rank, r in enumerate(records, 1):
        source = str(r.get("source", ""))
        img = (
            f'<img src="{esc(quote(str(r["thumb"])))}" alt="unit {unit} #{rank}" loading="lazy">'
            if r.get("thumb")
            else ""
        )
        figures.append(
            f'<figure class="top" data-rank="{rank}" data-score="{esc(_sort_value(r.get("score")))}" '
            f'data-frame="{int(r.get("frame", 0))}" data-source="{esc(source)}">{img}'
            f'<figcaption><b class="score">{_num(r.get("score"))}</b> '
            f'<span class="src" title="{esc(source)}">{esc(Path(source).name or source)}</span> '
            f'<span class="time">{_time(float(r.get("time_s", 0.0)))}</span> '
            f'<span class="frame">(frame {int(r.get("frame", 0))})</span></figcaption></figure>'
        )
    meta = f"max {_num(stat.get('max'))} · mean {_num(stat.get('mean'))}" if stat else ""
    return (
        f'<div class="unit{" dead" if dead else ""}" id="L{index}-u{unit}" data-unit="{unit}">'
        f'<h3>unit {unit}{" (dead)" if dead else ""} <span class="meta">{meta}</span></h3>'
        f'<div class="tops">{"".join(figures)}</div></div>'
    )


def read_manifest(folder: Path) -> dict[str, Any]:
    """``folder/manifest.json`` as written by :func:`write_analysis` (for readers of a finished analysis)."""
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
