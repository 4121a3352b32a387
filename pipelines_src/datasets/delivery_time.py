"""Food-delivery time: a seeded generator of a realistic tabular regression dataset.

Each row is one order; the target ``delivery_minutes`` is the time from order to
hand-off. Features have correlated distributions (orders peak at lunch and dinner,
traffic follows rush hours and weekdays, weather follows the season and is shared by
the orders of a day, riders avoid bikes for long trips and in storms), and the target
comes from non-linear effects and interactions plus noise: the courier arrives after a
queueing delay that grows sharply when few couriers are free, the food is ready after
its preparation time (the later of the two wins), the ride costs minutes per km that
depend on the vehicle, the traffic (worse in weekday rush hours, barely felt on a
bike) and the weather (felt most on a bike), and a few orders hit incidents.

``generate`` builds a frame (vectorized numpy, in chunks, deterministic for a seed);
``write_raw`` writes the raw zone's layout ``<dataset>/dt=YYYY-MM-DD/part-NNNNN.csv``.
Drift is injected with ``CovariateDrift`` (a feature's distribution moves, the
relation to the target stays) and ``ConceptDrift`` (the relation moves, the features
stay). Every random quantity has its own random stream, so for one seed a drifted
frame differs from the undrifted one only where the drift acts.

Command line::

    python -m pipelines_src.datasets.delivery_time --rows 100000 --seed 7 --out DIR \\
        [--format csv|parquet] [--covariate-drift traffic_level] [--concept-drift] [--days 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]

DATASET = "delivery_time"
TARGET = "delivery_minutes"
TRAFFIC_LEVELS = ("low", "medium", "high", "severe")
WEATHER = ("clear", "cloudy", "rain", "snow", "storm")
VEHICLES = ("bike", "scooter", "car")
COLUMNS = (
    "order_id",
    "order_date",
    "hour_of_day",
    "weekday",
    "distance_km",
    "prep_time_min",
    "couriers_available",
    "traffic_level",
    "weather",
    "order_items",
    "order_value",
    "restaurant_rating",
    "vehicle_type",
    TARGET,
)
DEFAULT_START = dt.date(2024, 1, 1)
DEFAULT_ROWS_PER_FILE = 1_000_000
# Rows generated at a time: bounds the temporaries of a 10M-row frame. Part of the
# seed's meaning (random streams are per chunk), so changing it changes the data.
CHUNK_ROWS = 250_000
MIN_DELIVERY_MINUTES = 8.0
MAX_DELIVERY_MINUTES = 150.0

FileFormat = Literal["csv", "parquet"]
CovariateFeature = Literal["traffic_level", "distance_km", "weather", "couriers_available"]
ConceptEffect = Literal["distance", "traffic", "weather", "couriers"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CovariateDrift:
    """A shift of one feature's distribution; how features make the target stays the same.

    ``feature``: ``traffic_level`` (more high and severe traffic, as in a December rush),
    ``distance_km`` (longer trips: distances scaled by ``1 + strength``), ``weather``
    (the mix moves towards rain, snow and storms) or ``couriers_available`` (fewer free
    couriers). ``strength``: 0 is no drift, 1 a strong one.
    """

    feature: CovariateFeature
    strength: float = 0.5

    def __post_init__(self) -> None:
        if self.feature not in get_args(CovariateFeature):
            raise ValueError(
                f"CovariateDrift.feature: {self.feature!r} is not one of {', '.join(get_args(CovariateFeature))}"
            )
        _check_strength("CovariateDrift", self.strength)


@dataclass(frozen=True)
class ConceptDrift:
    """A change of how features make the target; the feature distributions stay the same.

    ``effect``: ``distance`` (every km costs ``1 + strength`` times the minutes),
    ``traffic`` (the traffic slowdown is ``1 + strength`` times as large: 1 doubles it),
    ``weather`` (the weather slowdown grows likewise) or ``couriers`` (the queueing
    delay when few couriers are free grows likewise).
    """

    effect: ConceptEffect = "distance"
    strength: float = 0.5

    def __post_init__(self) -> None:
        if self.effect not in get_args(ConceptEffect):
            raise ValueError(f"ConceptDrift.effect: {self.effect!r} is not one of {', '.join(get_args(ConceptEffect))}")
        _check_strength("ConceptDrift", self.strength)


def _check_strength(owner: str, strength: float) -> None:
    if not (math.isfinite(strength) and strength >= 0):
        raise ValueError(f"{owner}.strength: must be a finite number >= 0, got {strength!r}")


# --- shape of the world -------------------------------------------------------------

_HOURS = np.arange(24, dtype=np.float64)
# Orders per weekday, Monday first: weekends order more.
_WEEKDAY_DEMAND = np.array([0.90, 0.92, 0.95, 1.00, 1.15, 1.25, 1.20])
# Weather mix (clear, cloudy, rain, snow, storm) in mid-winter and mid-summer; in between it blends.
_WINTER_WEATHER = np.array([0.28, 0.30, 0.17, 0.18, 0.07])
_SUMMER_WEATHER = np.array([0.52, 0.24, 0.14, 0.00, 0.10])
_STORMY_WEATHER = np.array([0.05, 0.15, 0.35, 0.25, 0.20])
# Share of a day's orders that see the day's prevailing weather (the rest see a passing change).
_DAILY_WEATHER_SHARE = 0.7
_WEATHER_TRAFFIC = np.array([0.0, 0.05, 0.35, 0.7, 0.9])
_WEATHER_FEWER_COURIERS = np.array([0.0, 0.0, 1.5, 3.5, 4.5])
_TRAFFIC_THRESHOLDS = np.array([0.95, 1.65, 2.35])
_RATING_MISSING_SHARE = 0.035

# Minutes per km on a free road in clear weather, per vehicle (bike, scooter, car).
_MINUTES_PER_KM = np.array([3.4, 2.5, 2.1])
# Slowdown per traffic level (low .. severe) for a car; other vehicles feel a share of it.
_TRAFFIC_SLOWDOWN = np.array([0.0, 0.18, 0.48, 0.95])
_TRAFFIC_SENSITIVITY = np.array([0.2, 0.65, 1.0])
_RUSH_TRAFFIC_BOOST = 0.5
# Slowdown per (vehicle, weather): rows bike, scooter, car; columns clear .. storm.
_WEATHER_SLOWDOWN = np.array(
    [
        [0.0, 0.02, 0.32, 0.75, 0.95],
        [0.0, 0.02, 0.20, 0.50, 0.60],
        [0.0, 0.00, 0.08, 0.25, 0.30],
    ]
)
# Queueing: minutes until a courier is free, at zero couriers, and its decay per courier.
_QUEUE_MINUTES = 22.0
_QUEUE_DECAY = 2.8


def _bump(center: float, width: float, hours: FloatArray = _HOURS) -> FloatArray:
    """A bell over the 24-hour clock (wraps past midnight)."""
    distance = np.abs(hours - center)
    distance = np.minimum(distance, 24.0 - distance)
    return np.asarray(np.exp(-0.5 * (distance / width) ** 2))


_NIGHT = (_HOURS >= 2) & (_HOURS <= 6)
_WEEKDAY_ORDERS = 0.03 + 0.25 * _bump(8.0, 1.0) + 1.0 * _bump(12.5, 1.2) + 0.3 * _bump(15.5, 1.5)
_WEEKDAY_ORDERS += 1.4 * _bump(19.0, 1.6) + 0.25 * _bump(22.5, 1.2)
_WEEKEND_ORDERS = 0.04 + 0.8 * _bump(12.8, 1.8) + 1.6 * _bump(19.5, 1.8) + 0.5 * _bump(23.0, 1.6)
_WEEKDAY_ORDERS[_NIGHT] *= 0.3
_WEEKEND_ORDERS[_NIGHT] *= 0.4
_HOUR_CDF = np.vstack([np.cumsum(_WEEKDAY_ORDERS), np.cumsum(_WEEKEND_ORDERS)])
_HOUR_CDF /= _HOUR_CDF[:, -1:]
_WEEKDAY_RUSH = 1.5 * _bump(8.0, 1.1) + 1.9 * _bump(17.5, 1.4) + 0.6 * _bump(13.0, 2.0)
_WEEKEND_RUSH = 0.9 * _bump(14.0, 3.0)
_LUNCH = _bump(12.5, 1.2)
_DINNER = _bump(19.0, 1.5)
_RUSH_HOURS = ((_HOURS >= 7) & (_HOURS <= 9)) | ((_HOURS >= 16) & (_HOURS <= 19))

# One random stream per quantity: drift that changes one quantity leaves the others' draws alone.
_STREAMS = (
    "day_counts",
    "daily_weather",
    "weather_keep",
    "weather_passing",
    "hour",
    "traffic",
    "distance",
    "vehicle",
    "items",
    "price",
    "value_noise",
    "prep",
    "rating",
    "rating_missing",
    "couriers",
    "noise_scale",
    "noise_shift",
    "incident",
    "incident_minutes",
)


def _stream(seed: int, name: str, chunk: int = 0) -> np.random.Generator:
    """The random generator of quantity ``name`` in chunk ``chunk`` for ``seed``."""
    key = (_STREAMS.index(name), chunk)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class _Calendar:
    """The dated frame of the generated period: day of each order and each day's weather."""

    dates: npt.NDArray[np.datetime64]  # one per day of the period
    weekday: IntArray  # per day, Monday = 0
    weather_mix: FloatArray  # per day x weather: probabilities
    daily_weather: IntArray  # per day: the prevailing weather code
    day_of_row: IntArray  # per row (sorted): index into dates


def _calendar(rows: int, seed: int, start: dt.date, days: int, drift: CovariateDrift | None) -> _Calendar:
    dates = np.datetime64(start, "D") + np.arange(days)
    day_numbers = dates.astype(np.int64)
    weekday = (day_numbers + 3) % 7  # 1970-01-01 was a Thursday
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    winter = 0.5 * (1.0 + np.cos(2.0 * np.pi * (day_of_year - 15) / 365.25))
    mix = winter[:, None] * _WINTER_WEATHER + (1.0 - winter[:, None]) * _SUMMER_WEATHER
    if drift is not None and drift.feature == "weather":
        share = min(drift.strength, 1.0)
        mix = (1.0 - share) * mix + share * _STORMY_WEATHER
    daily_weather = _sample_rows(mix, _stream(seed, "daily_weather").random(days))
    demand = _WEEKDAY_DEMAND[weekday] * (1.0 + 0.002 * np.arange(days))
    counts = _stream(seed, "day_counts").multinomial(rows, demand / demand.sum())
    day_of_row = np.repeat(np.arange(days, dtype=np.int64), counts)
    return _Calendar(dates, weekday, mix, daily_weather, day_of_row)


def _rounded(values: npt.ArrayLike, decimals: int) -> FloatArray:
    """Values rounded as a real dataset records them."""
    return np.asarray(np.round(np.asarray(values, dtype=np.float64), decimals), dtype=np.float64)


def _sample_rows(probabilities: FloatArray, uniform: FloatArray) -> IntArray:
    """Per row, the category whose cumulative probability first exceeds the row's uniform draw."""
    cumulative = np.cumsum(probabilities, axis=1)
    cumulative /= cumulative[:, -1:]
    chosen = np.minimum((uniform[:, None] >= cumulative).sum(axis=1), probabilities.shape[1] - 1)
    return np.asarray(chosen, dtype=np.int64)


def _order_ids(first: int, count: int, seed: int) -> npt.NDArray[np.str_]:
    """``ORD-`` and 10 hex digits: a seed-dependent bijection of the row number (unique, random-looking)."""
    mask = np.uint64((1 << 40) - 1)
    offset = np.uint64((seed * 0x9E3779B1 + 0x2545F491) & ((1 << 40) - 1))
    number = np.arange(first, first + count, dtype=np.uint64)
    number = (number * np.uint64(0x5851F42D4C95) + offset) & mask
    number ^= number >> np.uint64(19)
    number = (number * np.uint64(0xD6E8FEB86659) + np.uint64(1)) & mask
    shifts = np.arange(36, -1, -4, dtype=np.uint64)
    digits = ((number[:, None] >> shifts) & np.uint64(15)).astype(np.intp)
    chars = np.empty((count, 14), dtype=np.uint8)
    chars[:, :4] = np.frombuffer(b"ORD-", dtype=np.uint8)
    chars[:, 4:] = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[digits]
    return np.ascontiguousarray(chars).view("S14").ravel().astype("U14")


def _chunk(
    seed: int,
    chunk: int,
    first: int,
    calendar: _Calendar,
    covariate: CovariateDrift | None,
    concept: ConceptDrift | None,
) -> dict[str, npt.NDArray[np.generic]]:
    """Rows ``first .. first + n`` of the frame as column arrays."""
    day = calendar.day_of_row[first : first + CHUNK_ROWS]
    n = len(day)

    def rng(name: str) -> np.random.Generator:
        return _stream(seed, name, chunk)

    def strength(feature: str) -> float:
        return covariate.strength if covariate is not None and covariate.feature == feature else 0.0

    weekday = calendar.weekday[day]
    weekend = weekday >= 5
    passing = _sample_rows(calendar.weather_mix[day], rng("weather_passing").random(n))
    weather = np.where(rng("weather_keep").random(n) < _DAILY_WEATHER_SHARE, calendar.daily_weather[day], passing)
    hour_uniform = rng("hour").random(n)
    hour = np.where(
        weekend,
        np.searchsorted(_HOUR_CDF[1], hour_uniform, side="right"),
        np.searchsorted(_HOUR_CDF[0], hour_uniform, side="right"),
    )
    hour = np.minimum(hour, 23).astype(np.int64)

    congestion = np.where(weekend, _WEEKEND_RUSH[hour], _WEEKDAY_RUSH[hour]) + _WEATHER_TRAFFIC[weather]
    congestion = 0.3 + congestion + rng("traffic").normal(0.0, 0.45, n) + 1.3 * strength("traffic_level")
    traffic = np.searchsorted(_TRAFFIC_THRESHOLDS, congestion).astype(np.int64)

    distance = rng("distance").lognormal(math.log(3.0), 0.55, n) * np.where(weekend, 1.08, 1.0)
    distance = _rounded(np.clip(distance * (1.0 + strength("distance_km")), 0.3, 40.0), 2)

    vehicle = _vehicles(distance, weather, rng("vehicle").random(n))

    items = 1 + rng("items").poisson(1.1 + 0.6 * _DINNER[hour] + 0.3 * weekend)
    items = np.minimum(items, 20).astype(np.int64)
    price = rng("price").lognormal(math.log(10.5), 0.3, n)
    value = _rounded(np.maximum(items * price + rng("value_noise").normal(0.0, 1.5, n), 3.0), 2)

    kitchen_load = _LUNCH[hour] + 1.3 * _DINNER[hour]
    prep = 5.0 + 2.0 * items + 5.0 * kitchen_load + rng("prep").gamma(2.0, 2.5, n)
    prep = _rounded(np.clip(prep, 3.0, 75.0), 1)

    rating = _rounded(1.0 + 4.0 * rng("rating").beta(9.0, 2.2, n), 1)
    rating[rng("rating_missing").random(n) < _RATING_MISSING_SHARE] = np.nan

    supply = 13.0 - 5.0 * _LUNCH[hour] - 7.0 * _DINNER[hour] + 2.0 * weekend - _WEATHER_FEWER_COURIERS[weather]
    supply = np.maximum(supply, 1.0) * np.where(_NIGHT[hour], 0.4, 1.0) / (1.0 + 1.5 * strength("couriers_available"))
    couriers = np.minimum(rng("couriers").poisson(supply), 60).astype(np.int64)

    order = _Order(
        hour=hour,
        weekend=weekend,
        distance=distance,
        prep=prep,
        couriers=couriers,
        traffic=traffic,
        weather=weather,
        items=items,
        rating=rating,
        vehicle=vehicle,
    )
    minutes = _delivery_minutes(order, concept, rng)
    return {
        "order_id": _order_ids(first, n, seed),
        "day": day,
        "hour_of_day": hour,
        "weekday": weekday,
        "distance_km": distance,
        "prep_time_min": prep,
        "couriers_available": couriers,
        "traffic_level": traffic.astype(np.int8),
        "weather": weather.astype(np.int8),
        "order_items": items,
        "order_value": value,
        "restaurant_rating": rating,
        "vehicle_type": vehicle.astype(np.int8),
        TARGET: minutes,
    }


def _vehicles(distance: FloatArray, weather: IntArray, uniform: FloatArray) -> IntArray:
    """Bikes for short trips in fair weather, cars for long trips and storms."""
    rough = np.isin(weather, (WEATHER.index("snow"), WEATHER.index("storm")))
    wet = weather == WEATHER.index("rain")
    logits = np.column_stack(
        [
            1.3 - 0.5 * distance - 1.4 * rough - 0.5 * wet,
            0.9 - 0.12 * distance - 0.4 * rough,
            -1.3 + 0.22 * distance + 0.6 * rough,
        ]
    )
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return _sample_rows(weights, uniform)


@dataclass(frozen=True)
class _Order:
    hour: IntArray
    weekend: BoolArray
    distance: FloatArray
    prep: FloatArray
    couriers: IntArray
    traffic: IntArray
    weather: IntArray
    items: IntArray
    rating: FloatArray
    vehicle: IntArray


def _delivery_minutes(
    order: _Order, concept: ConceptDrift | None, rng: Callable[[str], np.random.Generator]
) -> FloatArray:
    """The target: the later of food-ready and courier-arrived, plus the ride, hand-off and noise."""

    def boost(effect: str) -> float:
        return 1.0 + (concept.strength if concept is not None and concept.effect == effect else 0.0)

    n = len(order.hour)
    rush = ~order.weekend & _RUSH_HOURS[order.hour]
    traffic = (
        _TRAFFIC_SLOWDOWN[order.traffic] * _TRAFFIC_SENSITIVITY[order.vehicle] * (1.0 + _RUSH_TRAFFIC_BOOST * rush)
    )
    weather = _WEATHER_SLOWDOWN[order.vehicle, order.weather]
    per_km = _MINUTES_PER_KM[order.vehicle] * boost("distance")
    per_km = per_km * np.where(order.vehicle == 0, 1.0 + 0.05 * np.maximum(order.distance - 4.0, 0.0), 1.0)
    ride = order.distance * per_km * (1.0 + traffic * boost("traffic")) * (1.0 + weather * boost("weather"))

    queue = _QUEUE_MINUTES * np.exp(-order.couriers / _QUEUE_DECAY) * boost("couriers")
    courier_arrives = queue + 3.0 + 0.6 * np.minimum(order.distance, 5.0)
    pickup = np.maximum(order.prep, courier_arrives)
    rating = np.where(np.isnan(order.rating), 1.5, -1.2 * (np.nan_to_num(order.rating, nan=4.2) - 4.2))
    handoff = 2.0 + 0.25 * order.items

    minutes = (pickup + ride + handoff + rating) * rng("noise_scale").lognormal(0.0, 0.07, n)
    minutes += rng("noise_shift").normal(0.0, 2.0, n)
    incident = rng("incident").random(n) < 0.04
    minutes += incident * rng("incident_minutes").exponential(8.0, n)
    return _rounded(np.clip(minutes, MIN_DELIVERY_MINUTES, MAX_DELIVERY_MINUTES), 1)


def generate(
    rows: int,
    *,
    seed: int = 0,
    start: dt.date = DEFAULT_START,
    days: int = 30,
    covariate_drift: CovariateDrift | None = None,
    concept_drift: ConceptDrift | None = None,
) -> pd.DataFrame:
    """``rows`` orders placed over ``days`` days from ``start``: the same frame for the same arguments.

    Rows are ordered by ``order_date``; ``order_id`` is unique within the frame. Columns
    are ``COLUMNS``: ints as int64, floats as float64 (``restaurant_rating`` has a few
    percent nulls), ``order_date`` as datetime64[ns] at midnight, the categories as
    pandas categoricals with the categories in ``TRAFFIC_LEVELS``/``WEATHER``/``VEHICLES``
    order.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows: must be an integer >= 0, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days: must be an integer >= 1, got {days!r}")
    calendar = _calendar(rows, seed, start, days, covariate_drift)
    columns: dict[str, npt.NDArray[np.generic]] = {}
    ids: list[pd.Series] = []
    for number, first in enumerate(range(0, max(rows, 1), CHUNK_ROWS)):
        chunk = _chunk(seed, number, first, calendar, covariate_drift, concept_drift)
        ids.append(pd.Series(chunk.pop("order_id")))  # compact string storage, chunk by chunk
        for name, values in chunk.items():
            if name not in columns:
                columns[name] = np.empty(rows, dtype=values.dtype)
            columns[name][first : first + len(values)] = values
    order_ids = pd.concat(ids, ignore_index=True) if len(ids) > 1 else ids[0]
    return _frame(columns, order_ids, calendar)


def _frame(columns: dict[str, npt.NDArray[np.generic]], order_ids: pd.Series, calendar: _Calendar) -> pd.DataFrame:
    day = columns.pop("day")
    data: dict[str, object] = {}
    for name in COLUMNS:
        if name == "order_id":
            data[name] = order_ids
        elif name == "order_date":
            data[name] = pd.Series(calendar.dates[day].astype("datetime64[ns]"))
        elif name in ("traffic_level", "weather", "vehicle_type"):
            categories = {"traffic_level": TRAFFIC_LEVELS, "weather": WEATHER, "vehicle_type": VEHICLES}[name]
            data[name] = pd.Categorical.from_codes(columns[name], categories=list(categories))
        else:
            data[name] = columns[name]
    return pd.DataFrame(data, copy=False)


# --- raw zone -------------------------------------------------------------------------


def write_raw(
    frame: pd.DataFrame,
    root: Path,
    *,
    dataset: str = DATASET,
    file_format: FileFormat = "csv",
    rows_per_file: int = DEFAULT_ROWS_PER_FILE,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``frame`` as the raw zone lays it out: ``root/<dataset>/dt=YYYY-MM-DD/part-00000.<ext>``.

    One folder per ``order_date``, rows in frame order, at most ``rows_per_file`` rows a
    file. CSV has a header row and ISO dates; Parquet stores ``order_date`` as a date.
    The same frame gives the same bytes. An existing dataset folder with data is refused
    unless ``overwrite`` (which removes it first), so no stale part file joins the data.
    Returns the written files in order.
    """
    if file_format not in get_args(FileFormat):
        raise ValueError(f"file_format: {file_format!r} is not one of {', '.join(get_args(FileFormat))}")
    if isinstance(rows_per_file, bool) or not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ValueError(f"rows_per_file: must be an integer >= 1, got {rows_per_file!r}")
    if "order_date" not in frame.columns:
        raise ValueError("frame: has no order_date column to partition by")
    target = Path(root) / dataset
    if target.exists() and any(path.is_file() for path in target.rglob("*")):
        if not overwrite:
            raise FileExistsError(f"{target}: already holds data; pass overwrite=True (--overwrite) to replace it")
        shutil.rmtree(target)
    days = frame["order_date"].to_numpy(dtype="datetime64[D]")
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    starts = np.flatnonzero(np.r_[True, sorted_days[1:] != sorted_days[:-1]]) if len(days) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(days)]
    written: list[Path] = []
    for begin, end in zip(starts.tolist(), ends.tolist(), strict=True):
        folder = target / f"dt={sorted_days[begin]}"
        folder.mkdir(parents=True, exist_ok=True)
        for part, first in enumerate(range(begin, end, rows_per_file)):
            rows = frame.iloc[order[first : min(first + rows_per_file, end)]]
            path = folder / f"part-{part:05d}.{file_format}"
            _write_file(rows, path, file_format)
            written.append(path)
    return written


def _write_file(rows: pd.DataFrame, path: Path, file_format: FileFormat) -> None:
    if file_format == "csv":
        rows.to_csv(path, index=False, date_format="%Y-%m-%d")
        return
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.Table.from_pandas(rows, preserve_index=False)
    for position, name in enumerate(table.column_names):
        if pa.types.is_timestamp(table.schema.field(name).type):
            table = table.set_column(position, name, table.column(name).cast(pa.date32()))
    pq.write_table(table, path)


# --- command line ---------------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines_src.datasets.delivery_time",
        description="Generate food-delivery orders and write them in the raw zone's layout.",
    )
    parser.add_argument("--rows", type=int, required=True, help="number of orders")
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0); the same seed gives the same files")
    parser.add_argument("--out", type=Path, required=True, help="raw zone root; files go to OUT/<dataset>/dt=.../")
    parser.add_argument("--format", choices=get_args(FileFormat), default="csv", dest="file_format")
    parser.add_argument("--days", type=int, default=30, help="days the orders span (default 30)")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=DEFAULT_START, help="first day, YYYY-MM-DD")
    parser.add_argument("--dataset", default=DATASET, help=f"dataset folder name (default {DATASET})")
    parser.add_argument("--rows-per-file", type=int, default=DEFAULT_ROWS_PER_FILE)
    parser.add_argument(
        "--covariate-drift", choices=get_args(CovariateFeature), help="feature whose distribution shifts"
    )
    parser.add_argument(
        "--concept-drift",
        nargs="?",
        const="distance",
        choices=get_args(ConceptEffect),
        help="change how features make the target (default effect: distance)",
    )
    parser.add_argument("--drift-strength", type=float, default=0.5, help="strength of the drift (default 0.5)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT/<dataset> if it holds data")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Generate, write and print what was written: one line per file, then totals and timings."""
    args = _parse_args(argv)
    try:
        covariate = CovariateDrift(args.covariate_drift, args.drift_strength) if args.covariate_drift else None
        concept = ConceptDrift(args.concept_drift, args.drift_strength) if args.concept_drift else None
        began = time.perf_counter()
        frame = generate(
            args.rows,
            seed=args.seed,
            start=args.start,
            days=args.days,
            covariate_drift=covariate,
            concept_drift=concept,
        )
        generated = time.perf_counter()
        files = write_raw(
            frame,
            args.out,
            dataset=args.dataset,
            file_format=args.file_format,
            rows_per_file=args.rows_per_file,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as error:
        print(f"delivery_time: {error}", file=sys.stderr)
        return 2
    written = time.perf_counter()
    for path in files:
        print(path)
    print(
        f"wrote {len(frame)} rows in {len(files)} {args.file_format} files under {args.out / args.dataset} "
        f"(generate {generated - began:.2f} s, write {written - generated:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
