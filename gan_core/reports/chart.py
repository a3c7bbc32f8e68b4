"""The chart of a training run's progress, drawn from its progress.jsonl with matplotlib
(the Agg backend, through its object API: no pyplot, no global figure state, no display).

Six panels: the G and D losses, the regularisers (R1, path length), ADA (p and the
overfitting heuristic r_t against its target), metrics measured at snapshots (SWD, FID,
KID), speed (sec/kimg) and a summary. Written atomically as `chart.png` in the run folder.

When it is drawn: on request (`ensure_chart`), and again only when progress.jsonl changed
since (its size and modification time are stored inside the PNG as text). The training
loop never draws it, so a progress report costs nothing; the server draws it when asked.
A run trained from the command line gets its chart with `write_chart(run_dir)`.
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

from gan_core.fileio import atomic_path

PROGRESS_NAME = "progress.jsonl"
CHART_NAME = "chart.png"
CONFIG_NAME = "config.json"
STAMP_KEY = "latent-studio-progress"  # PNG text chunk: which progress.jsonl the chart shows
FIGSIZE = (12.0, 6.6)  # inches; 100 dpi: 1200 x 660 px
DPI = 100
METRICS = ("swd", "fid", "kid")  # measured at snapshots; lower is better
_draw_lock = threading.Lock()  # one drawing at a time per process (matplotlib's caches are shared)


class ChartError(RuntimeError):
    """The chart cannot be drawn here (no matplotlib); the message says what to install."""


def progress_path(run_dir) -> Path:
    return Path(run_dir) / PROGRESS_NAME


def chart_path(run_dir) -> Path:
    return Path(run_dir) / CHART_NAME


def _events(path: Path):
    """Each JSON object in the file; a line that does not parse (the half-written last line of
    a running job, a torn write after a crash) is skipped."""
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def read_progress(run_dir) -> dict:
    """The series a chart shows, oldest step first:
    {"steps": target or None, "step": newest step, "kimg", "ada_target",
     "progress": [{step, kimg, G, D, r1, pl, ada_p, r_t, sec_per_kimg}],
     "metrics": [{step, swd?, fid?, kid?}]}.
    A step reported twice (a run resumed from an earlier snapshot trains it again) keeps its
    newest report, so the lines never run backwards."""
    progress, metrics = {}, {}
    out = {"steps": None, "step": 0, "kimg": 0.0, "ada_target": None}
    path = progress_path(run_dir)
    if path.is_file():
        for event in _events(path):
            kind = event.get("event")
            step = event.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                continue
            if isinstance(event.get("steps"), int):
                out["steps"] = event["steps"]
            if kind == "progress":
                losses = event.get("losses") if isinstance(event.get("losses"), dict) else {}
                progress[step] = {"step": step, "kimg": _number(event.get("kimg")),
                                  **{k: _number(losses.get(k)) for k in ("G", "D", "r1", "pl")},
                                  **{k: _number(event.get(k)) for k in ("ada_p", "r_t", "sec_per_kimg")}}
            elif kind == "snapshot":
                measured = {k: _number(event.get(k)) for k in METRICS if _number(event.get(k)) is not None}
                if measured:
                    metrics[step] = {"step": step, **measured}
            if kind in ("progress", "snapshot", "done"):
                out["step"] = step
                out["kimg"] = _number(event.get("kimg")) or out["kimg"]
    try:
        config = json.loads((Path(run_dir) / CONFIG_NAME).read_text(encoding="utf-8"))
        if config.get("aug") == "ada":
            out["ada_target"] = _number(config.get("ada_target"))
    except (OSError, ValueError, AttributeError):
        pass
    out["progress"] = [progress[s] for s in sorted(progress)]
    out["metrics"] = [metrics[s] for s in sorted(metrics)]
    return out


# ------------------------------------------------------------------ drawing

def _line(ax, rows, key, label, style) -> bool:
    points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    if not points:
        return False
    xs, ys = zip(*points)
    style.setdefault("marker", "o" if len(points) < 3 else None)  # one point alone would not show
    ax.plot(xs, ys, label=label, **style)
    return True


def _panel(ax, title, rows, series, empty="not measured yet"):
    ax.set_title(title, fontsize=10)
    drawn = [_line(ax, rows, key, label, dict(style)) for key, label, style in series]
    if any(drawn):
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    return any(drawn)


def _summary(ax, data):
    ax.axis("off")
    last = data["progress"][-1] if data["progress"] else {}
    target = f" of {data['steps']:,}" if data["steps"] else ""
    lines = [f"step {data['step']:,}{target}", f"{data['kimg']:.2f} kimg"]
    for key, label in (("G", "loss G"), ("D", "loss D"), ("ada_p", "ADA p"), ("sec_per_kimg", "sec/kimg")):
        if last.get(key) is not None:
            lines.append(f"{label}: {last[key]:.4g}")
    for key in METRICS:
        values = [m[key] for m in data["metrics"] if key in m]
        if values:
            lines.append(f"{key.upper()}: {values[-1]:.4g} (best {min(values):.4g})")
    ax.text(0.05, 0.95, "\n".join(lines), va="top", ha="left", fontsize=10, family="monospace",
            transform=ax.transAxes)


def draw_chart(data: dict, out) -> Path:
    """Draw `data` (from `read_progress`) into the PNG file `out` (atomically)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartError("matplotlib is not installed: install Latent Studio again (scripts/setup.sh) "
                         "or `pip install matplotlib`") from None
    rows, metrics = data["progress"], data["metrics"]
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    _panel(axes[0][0], "Losses", rows, [("G", "G", {}), ("D", "D", {})], empty="no progress report yet")
    _panel(axes[0][1], "Regularisation", rows, [("r1", "R1", {}), ("pl", "path length", {})])
    ada = axes[0][2]
    if _panel(ada, "ADA", rows, [("ada_p", "p", {}), ("r_t", "r_t", {})], empty="augmentation is not adaptive"):
        if data.get("ada_target") is not None:
            ada.axhline(data["ada_target"], color="0.4", linestyle="--", linewidth=1, label="target")
            ada.legend(fontsize=8, loc="best")
    _panel(axes[1][0], "Metrics (at snapshots)", metrics,
           [(k, k.upper(), {"marker": "o"}) for k in METRICS], empty="no metric measured")
    _panel(axes[1][1], "Speed (sec/kimg)", rows, [("sec_per_kimg", "sec/kimg", {})])
    _summary(axes[1][2], data)
    for ax in (axes[1][0], axes[1][1]):
        ax.set_xlabel("step", fontsize=8)
    fig.suptitle("Training progress", fontsize=12)
    target = Path(out)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", metadata={STAMP_KEY: data.get("stamp", "")})
    return target


def _stamp(path: Path) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def _drawn_from(chart: Path) -> str | None:
    """The progress stamp a chart PNG was drawn from (None: no chart, or not one of ours)."""
    from PIL import Image  # only the header and text chunks are read

    try:
        with Image.open(chart) as img:
            return img.info.get(STAMP_KEY)
    except (OSError, ValueError):
        return None


def write_chart(run_dir) -> Path:
    """Draw the run's chart now; returns chart.png."""
    with _draw_lock:
        stamp = _stamp(progress_path(run_dir))
        data = read_progress(run_dir)
        data["stamp"] = stamp or ""
        return draw_chart(data, chart_path(run_dir))


def ensure_chart(run_dir) -> Path | None:
    """chart.png, drawn again only when progress.jsonl changed since it was drawn; None when
    the run has no progress.jsonl yet (it has not started)."""
    stamp = _stamp(progress_path(run_dir))
    if stamp is None:
        return None
    chart = chart_path(run_dir)
    if _drawn_from(chart) == stamp:
        return chart
    with _draw_lock:
        stamp = _stamp(progress_path(run_dir))  # another thread may have drawn it meanwhile
        if _drawn_from(chart) == stamp:
            return chart
        data = read_progress(run_dir)
        data["stamp"] = stamp or ""
        return draw_chart(data, chart)
