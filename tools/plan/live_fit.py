"""From one live load run's figures to the local runtime's model, its simulation, and the comparison.

:func:`fit_run` takes the dict :meth:`tools.plan.live_run.LiveRun.run` returns (or one saved with
``--save``) and fits every time of :class:`~tools.plan.simulate_local.LocalRuntimeModel` from that run
alone, nothing tuned to the answer:

- an invocation: least squares of the handler's ``BatchLatency`` on its events (intercept: the
  overhead, slope: the time per event), plus the runtime's own time around the handler (its
  ``invocation_s`` per invocation less the mean ``BatchLatency``); ``jitter``: the spread of the log of
  measured over fitted durations;
- a poll: least squares of each ``GetRecords`` call's time on the stream's size and the records it
  returned (from the runtime's sums; without them, the mean empty call and the rest per record read);
  per record read, that share plus the archive's time over the records read; the spread of the calls
  around that fit (``poll_jitter``);
- a round's end: its measured time over the rounds, and their spread; the idle wait as the runtime
  reports it;
- what the runtime's timing does not cover (building the Lambda events, the loop itself): the wall
  time less every part and the idle waits, charged per record invoked;
- the load: its rate (the target if it was reached, else the rate achieved), events per record,
  the producer's linger (0.2 s) and its mean ``PutRecords`` call.

:func:`compare` runs the simulation and sets measured (events counted over the time from the first
``put()`` to the end of the last invocation; the load probe's lag p50 and p95) against simulated.
A figure that cannot be fitted (no invocation in the run, no record read) raises :class:`FitError`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.exceptions import PipelineError
from tools.plan.simulate_local import LocalLoad, LocalRuntimeModel, simulate_local

__all__ = ["FitError", "LocalFit", "compare", "fit_run", "fit_service_time", "render"]

_LINGER_S = 0.2  # the producer's default linger, which the load runs use
_SUM_KEYS = ("n", "k", "nn", "kk", "nk", "ny", "ky")
_SUMS_SPREAD = "yy"


class FitError(PipelineError):
    """The run's figures cannot give a model (or the stack cannot give a run)."""


@dataclass(frozen=True, slots=True)
class LocalFit:
    model: LocalRuntimeModel
    load: LocalLoad
    wall_s: float
    outside_invocations_s: float
    """The runtime's time outside invocations between the two snapshots, idle waits included."""
    unaccounted_s: float


def fit_service_time(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """``(overhead_s, per_event_s, sigma)`` from ``(events, seconds)`` points by least squares, the
    overhead held at 0 or more; ``sigma`` is the standard deviation of ``log(measured / fitted)``."""
    if not points:
        raise FitError("no invocation in the run: nothing to fit")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx > 0:
        slope = sum((x - mx) * (y - my) for x, y in points) / sxx
        overhead = my - slope * mx
    else:
        slope, overhead = 0.0, my
    if overhead < 0 or slope < 0:  # through the origin (or flat) instead of a negative time
        sx2 = sum(x * x for x, _ in points)
        overhead, slope = (0.0, sum(x * y for x, y in points) / sx2) if sx2 > 0 else (my, 0.0)
    logs = [math.log(y / (overhead + slope * x)) for x, y in points if y > 0 and overhead + slope * x > 0]
    mean = sum(logs) / len(logs) if logs else 0.0
    sigma = math.sqrt(sum((v - mean) ** 2 for v in logs) / len(logs)) if logs else 0.0
    return overhead, slope, sigma


def fit_run(raw: dict[str, Any]) -> LocalFit:
    """The local runtime's model and the load of one run; see the module docstring."""
    try:
        return _fit(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise FitError(f"the run's figures are incomplete or malformed ({type(exc).__name__}: {exc})") from exc


def _fit(raw: dict[str, Any]) -> LocalFit:
    invocations = raw["invocations"]
    overhead, per_event, sigma = fit_service_time([(float(row[2]), float(row[3]) / 1000) for row in invocations])
    before, after = raw["timing_before"], raw["timing_after"]
    d = {key: float(value) - float(before[key]) for key, value in after.items() if isinstance(value, int | float)}
    d.pop("idle_wait_s", None)
    if d["invocations"] <= 0 or d["records_read"] <= 0 or d["rounds"] <= 0:
        raise FitError("the runtime's timing shows no invocation or no record read between the snapshots")
    handler_s = sum(float(row[3]) / 1000 for row in invocations) / len(invocations)
    around = max(d["invocation_s"] / d["invocations"] - handler_s, 0.0)
    poll, per_stream, per_call_record = _fit_get_records(before, after, d)
    poll_sigma = _poll_spread(before, after, d, (poll, per_stream, per_call_record))
    rounds_mean = d["round_end_s"] / d["rounds"]
    rounds_sigma = _sigma(rounds_mean, d.get("round_end_ss", 0.0) / d["rounds"] - rounds_mean**2)
    per_read = per_call_record + d["archive_s"] / d["records_read"]
    idle_wait = float(after["idle_wait_s"])
    parts = d["invocation_s"] + d["get_records_s"] + d["archive_s"] + d["round_end_s"] + d["idle_rounds"] * idle_wait
    wall = d["monotonic_s"]
    unaccounted = wall - parts
    model = LocalRuntimeModel(
        shards=int(raw["shards"]),
        invocation_overhead_s=overhead + around,
        per_event_s=per_event,
        get_records_s=poll,
        per_record_read_s=per_read,
        per_stream_record_s=per_stream,
        stream_records_at_start=int(before.get("stream_records", 0)),
        per_record_invoked_s=max(unaccounted, 0.0) / d["records_read"],
        round_end_s=d["round_end_s"] / d["rounds"],
        idle_wait_s=idle_wait,
        batch_size=int(raw["batch_size"]),
        batching_window_s=float(raw["batching_window_s"]),
        jitter=sigma,
        poll_jitter=poll_sigma,
        round_end_jitter=rounds_sigma,
    )
    report = raw["load"]
    events = int(report["events"])
    rate = float(raw["rate"]) if report["reached_target"] else float(report["achieved_events_per_s"])
    puts = raw["put_records"]
    records = int(report["producer"]["records"]) or events
    load = LocalLoad(
        rate=rate,
        seconds=events / rate,
        events_per_record=max(round(events / records), 1),
        linger_s=_LINGER_S,
        put_latency_s=float(puts["seconds"]) / puts["calls"] if puts["calls"] else 0.0,
    )
    return LocalFit(model, load, wall, wall - d["invocation_s"], unaccounted)


def _fit_get_records(before: dict[str, Any], after: dict[str, Any], d: dict[str, float]) -> tuple[float, float, float]:
    """``(a, c, b)`` of a GetRecords call's seconds ``a + c n + b k`` (``n`` the stream's size, ``k`` the
    records returned), least squares over the run's calls from the runtime's sums (``a`` held at 0 or
    more); where those are missing or the fit is degenerate (a negative term), ``c`` = 0, ``a`` the
    mean empty call and ``b`` the rest per record."""
    calls = d["get_records_calls"]
    if "get_records_sums" in after and calls > 0:
        s = {key: float(after["get_records_sums"][key]) - float(before["get_records_sums"][key]) for key in _SUM_KEYS}
        solved = _least_squares(calls, d["get_records_s"], s)
        if solved is not None and solved[0] < 0:  # no negative fixed cost: through the origin instead
            det = s["nn"] * s["kk"] - s["nk"] ** 2
            if det > 0:
                c, b = (s["ny"] * s["kk"] - s["ky"] * s["nk"]) / det, (s["ky"] * s["nn"] - s["ny"] * s["nk"]) / det
                solved = (0.0, c, b)
        if solved is not None and min(solved) >= 0:
            return solved
    empty = d["empty_get_records_calls"]
    poll = d["empty_get_records_s"] / empty if empty else d["get_records_s"] / calls
    return poll, 0.0, max(d["get_records_s"] - poll * calls, 0.0) / d["records_read"]


def _sigma(mean: float, variance: float) -> float:
    """The log-sigma of a log-normal with this mean and variance (0 when either is not positive)."""
    return math.sqrt(math.log1p(variance / mean**2)) if mean > 0 and variance > 0 else 0.0


def _poll_spread(
    before: dict[str, Any], after: dict[str, Any], d: dict[str, float], fit: tuple[float, float, float]
) -> float:
    """The log-sigma of a GetRecords call's time around the fitted ``a + c n + b k`` (from the residuals'
    sum of squares, which the sums give); 0 without them."""
    sums_after, sums_before = after.get("get_records_sums", {}), before.get("get_records_sums", {})
    if _SUMS_SPREAD not in sums_after or _SUMS_SPREAD not in sums_before:
        return 0.0
    s = {key: float(sums_after[key]) - float(sums_before[key]) for key in (*_SUM_KEYS, _SUMS_SPREAD)}
    calls, total = d["get_records_calls"], d["get_records_s"]
    a, c, b = fit
    residual = (
        s["yy"] - 2 * (a * total + c * s["ny"] + b * s["ky"])
        + a * a * calls + c * c * s["nn"] + b * b * s["kk"]
        + 2 * (a * c * s["n"] + a * b * s["k"] + c * b * s["nk"])
    )  # fmt: skip
    return _sigma(total / calls, residual / calls)


def _least_squares(calls: float, seconds: float, s: dict[str, float]) -> tuple[float, float, float] | None:
    """``(a, c, b)`` minimising the squares of ``y - a - c n - b k`` from the sums ``s`` over ``calls``
    calls (centred, so the stream's size in the tens of thousands does not swamp the precision);
    ``None`` when ``n`` and ``k`` did not vary independently."""
    mn, mk, my = s["n"] / calls, s["k"] / calls, seconds / calls
    snn = s["nn"] - calls * mn * mn
    skk = s["kk"] - calls * mk * mk
    snk = s["nk"] - calls * mn * mk
    sny = s["ny"] - calls * mn * my
    sky = s["ky"] - calls * mk * my
    det = snn * skk - snk * snk
    if snn <= 0 or skk <= 0 or det <= 1e-9 * snn * skk:
        return None
    c = (sny * skk - sky * snk) / det
    b = (sky * snn - sny * snk) / det
    return my - c * mn - b * mk, c, b


def _error(simulated: float, measured: float) -> float:
    return (simulated - measured) / measured if measured else math.nan


def compare(fit: LocalFit, raw: dict[str, Any], *, sim_seeds: int = 5, tolerance: float = 0.30) -> dict[str, Any]:
    """Measured against simulated (mean of ``sim_seeds`` seeds) throughput and lag for one run."""
    invocations = raw["invocations"]
    last_end = max(float(raw.get("last_end_epoch", -math.inf)), *(float(row[0]) for row in invocations))
    lag = raw["load"]["lag"]
    measured = {
        "events_per_s": raw["events_counted"] / (last_end - float(raw["started_epoch"])),
        "lag_p50_s": lag["p50_ms"] / 1000,
        "lag_p95_s": lag["p95_ms"] / 1000,
        "invocations": int(raw["timing_after"]["invocations"]) - int(raw["timing_before"]["invocations"]),
    }
    results = [simulate_local(fit.model, fit.load, seed=seed) for seed in range(1, sim_seeds + 1)]
    simulated = {
        "events_per_s": sum(r.events_per_s for r in results) / len(results),
        "lag_p50_s": sum(r.lag_p50_s for r in results) / len(results),
        "lag_p95_s": sum(r.lag_p95_s for r in results) / len(results),
        "invocations": sum(r.invocations for r in results) / len(results),
    }
    errors = {key: _error(simulated[key], measured[key]) for key in ("events_per_s", "lag_p50_s", "lag_p95_s")}
    return {
        "seed": raw.get("seed"),
        "shards": fit.model.shards,
        "events": raw["load"]["events"],
        "loadavg": raw.get("loadavg"),
        "model": asdict(fit.model),
        "load": asdict(fit.load),
        "runtime_wall_s": round(fit.wall_s, 3),
        "outside_invocations_s": round(fit.outside_invocations_s, 3),
        "unaccounted_s": round(fit.unaccounted_s, 3),
        "measured": measured,
        "simulated": simulated,
        "relative_error": errors,
        "within_tolerance": all(abs(e) <= tolerance for e in errors.values()),
    }


def render(rows: list[dict[str, Any]], tolerance: float) -> str:
    """The comparison as a table, one block per run."""
    lines: list[str] = []
    for number, row in enumerate(rows, 1):
        m, load = row["model"], row["load"]
        loadavg = row.get("loadavg") or {}
        lines.append(
            f"run {number}: {row['events']:,} events, {row['shards']} shards, {load['rate']:g} events/s; "
            f"load average {_avg(loadavg.get('before'))} before, {_avg(loadavg.get('after'))} after"
        )
        lines.append(
            f"  fitted: invocation {m['invocation_overhead_s'] * 1000:.0f} ms + {m['per_event_s'] * 1e6:,.0f} µs/event "
            f"(sigma {m['jitter']:.2f}); GetRecords {m['get_records_s'] * 1000:.1f} ms + "
            f"{m['per_stream_record_s'] * 1e6:.2f} ms per 1,000 records in the stream "
            f"(at first {m['stream_records_at_start']:,}) + "
            f"{m['per_record_read_s'] * 1e6:.0f} µs/record read; round end {m['round_end_s'] * 1000:.1f} ms; "
            f"unaccounted {m['per_record_invoked_s'] * 1e6:.0f} µs/record; idle wait {m['idle_wait_s']:g} s"
        )
        lines.append(
            f"  runtime: {row['runtime_wall_s']:.1f} s, of which {row['outside_invocations_s']:.1f} s outside "
            f"invocations ({row['unaccounted_s']:.1f} s not in any timed part)"
        )
        lines.append(f"  {'':16}{'measured':>10}{'simulated':>11}{'error':>9}")
        for key, label in (("events_per_s", "events/s"), ("lag_p50_s", "lag p50 (s)"), ("lag_p95_s", "lag p95 (s)")):
            error = row["relative_error"][key]
            flag = "" if abs(error) <= tolerance else "  over"
            lines.append(f"  {label:16}{row['measured'][key]:>10.2f}{row['simulated'][key]:>11.2f}{error:>+9.0%}{flag}")
        lines.append(f"  invocations     {row['measured']['invocations']:>10}{row['simulated']['invocations']:>11.1f}")
    verdict = all(row["within_tolerance"] for row in rows)
    lines.append(f"{'all within' if verdict else 'NOT all within'} {tolerance:.0%}")
    return "\n".join(lines)


def _avg(values: Any) -> str:
    return "?" if not values else "/".join(f"{v:.1f}" for v in values)
