"""The community's students, simulated year by year with NumPy (no per-row loops).

Each student has a latent risk; each year it drives attendance, behaviour, marks,
test scores, dropping out, and later college going, so that the usual correlations
hold. Community programs enrol students (more often the riskier ones, the selection
an evaluation must overcome) and change attendance and marks by a planted effect.
The result is the *truth*: canonical facts keyed by ``person_key``, before any
partner's system has renamed, recoded or misspelt anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from backbone.demo.calendar import (
    INSTRUCTIONAL_DAYS,
    SCHOOL_YEAR_START_MONTH,
    instructional_calendar,
)
from backbone.demo.community import DISTRICTS, INSTITUTIONS, PROGRAMS
from backbone.model.calendar import school_year_label

__all__ = ["Simulation", "simulate"]

RACES = np.array(
    [
        "White",
        "Black - African American",
        "Asian",
        "Two or more races",
        "American Indian - Alaska Native",
        "Native Hawaiian - Pacific Islander",
    ]
)
RACE_P = np.array([0.62, 0.20, 0.08, 0.07, 0.02, 0.01])
SUBJECTS = (
    # code, title, academic subject, middle-school?, high-school?, offset
    ("ELA", "English", "English Language Arts", True, True, 0.0),
    ("MAT", "Mathematics", "Mathematics", True, True, -3.0),
    ("SCI", "Science", "Science", True, True, -1.0),
    ("SOC", "Social Studies", "Social Studies", True, True, 1.0),
    ("ART", "Art and Music", "Fine and Performing Arts", True, True, 5.0),
    ("WLG", "Spanish", "World Languages", False, True, 0.0),
)
FALL_END = 89  # last instructional day index of the fall semester
ATTENDANCE_CATEGORIES = ("Excused Absence", "Unexcused Absence", "Tardy")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a plain sort: NumPy's hash-based unique is slower here)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``values`` found in ``sorted_set`` (which is sorted and distinct)."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.clip(np.searchsorted(sorted_set, values), 0, len(sorted_set) - 1)
    return np.asarray(sorted_set[pos] == values)


def _labels(codes: np.ndarray, labels: tuple[str, ...] | list[str]) -> pa.Array:
    """Strings for integer codes, built by Arrow (no Python object per row)."""
    dictionary = pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(list(labels), pa.string())
    )
    return dictionary.cast(pa.string())


def _load_names(file: str) -> pa.Table:
    path = resources.files("backbone.demo") / "data" / file
    with resources.as_file(path) as p:
        return pacsv.read_csv(p)


@dataclass
class Simulation:
    """Truth tables (Arrow) and the calendars they index into."""

    years: list[int]
    calendars: np.ndarray
    """datetime64[D] array [district, year index, 180]"""
    tables: dict[str, pa.Table] = field(default_factory=dict)


def _draw_names(
    rng: np.random.Generator, sex_female: np.ndarray
) -> dict[str, np.ndarray]:
    first = _load_names("first_names.csv")
    surnames = _load_names("surnames.csv")
    n = len(sex_female)
    out_first = np.empty(n, dtype=object)
    out_middle = np.empty(n, dtype=object)
    for sex_code, mask in (("F", sex_female), ("M", ~sex_female)):
        sel = np.asarray(first["sex"].to_pylist()) == sex_code
        names = np.asarray(first["name"].to_pylist(), dtype=object)[sel]
        weights = np.asarray(first["weight"].to_pylist(), dtype=float)[sel]
        # flatten the Zipf tail a little so rare names are not vanishingly rare
        p = weights**0.7 / (weights**0.7).sum()
        k = int(mask.sum())
        out_first[mask] = names[rng.choice(len(names), size=k, p=p)]
        out_middle[mask] = names[rng.choice(len(names), size=k, p=p)]
    has_middle = rng.random(n) < 0.72
    out_middle[~has_middle] = None
    sn = np.asarray(surnames["name"].to_pylist(), dtype=object)
    sw = np.asarray(surnames["weight"].to_pylist(), dtype=float)
    sp = sw / sw.sum()
    last = sn[rng.choice(len(sn), size=n, p=sp)]
    hyphen = rng.random(n) < 0.03
    second = sn[rng.choice(len(sn), size=int(hyphen.sum()), p=sp)]
    last[hyphen] = np.char.add(
        np.char.add(last[hyphen].astype(str), "-"), second.astype(str)
    ).astype(object)
    suffix = np.full(n, None, dtype=object)
    has_suffix = (~sex_female) & (rng.random(n) < 0.012)
    suffix[has_suffix] = np.where(rng.random(int(has_suffix.sum())) < 0.7, "Jr.", "III")
    return {"first": out_first, "middle": out_middle, "last": last, "suffix": suffix}


def simulate(
    students: int,
    years: int,
    seed: int,
    last_year: int = 2026,
    progress: Callable[[str], None] | None = None,
) -> Simulation:
    """Simulate ``students`` students over ``years`` school years ending ``last_year``."""
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    school_years = list(range(last_year - years + 1, last_year + 1))
    first_year = school_years[0]
    n_d = len(DISTRICTS)
    calendars = np.stack(
        [
            np.stack(
                [instructional_calendar(t, offset_days=d % 4) for t in school_years]
            )
            for d in range(n_d)
        ]
    )
    sim = Simulation(school_years, calendars)

    # --- persons ------------------------------------------------------------------
    say("simulating students")
    n = students
    pkey = np.arange(1, n + 1, dtype=np.int64)
    class_of = rng.integers(first_year, last_year + 13, size=n)
    shares = np.array([d.share for d in DISTRICTS])
    home = rng.choice(n_d, size=n, p=shares / shares.sum())
    female = rng.random(n) < 0.49
    hispanic = rng.random(n) < 0.24
    race = RACES[rng.choice(len(RACES), size=n, p=RACE_P)]
    poverty = np.array([d.poverty for d in DISTRICTS])[home]
    econ = rng.random(n) < poverty
    ell = rng.random(n) < np.where(hispanic, 0.25, 0.05)
    disability = rng.random(n) < 0.14
    risk_shift = np.array([d.risk_shift for d in DISTRICTS])
    z = (
        rng.normal(0.0, 1.0, n)
        + 0.55 * econ
        + 0.35 * disability
        + 0.15 * ell
        - 0.15 * female
        + risk_shift[home]
        - 0.3
    )
    # birth date: Sept 1 (class_of - 19) .. Aug 31 (class_of - 18)
    sept1 = np.array(
        [np.datetime64(f"{y - 19}-09-01") for y in range(first_year, last_year + 13)]
    )[class_of - first_year]
    birth = sept1 + rng.integers(0, 365, size=n).astype("timedelta64[D]")
    names = _draw_names(rng, female)
    state_id = (rng.permutation(9_000_000_000 // 997)[:n] * 997 + 1_000_000_000).astype(
        np.int64
    )[:n]
    sim.tables["persons"] = pa.table(
        {
            "person_key": pkey,
            "first_name": pa.array(names["first"], pa.string()),
            "middle_name": pa.array(names["middle"], pa.string()),
            "last_surname": pa.array(names["last"], pa.string()),
            "generation_code_suffix": pa.array(names["suffix"], pa.string()),
            "birth_date": birth,
            "sex": np.where(female, "Female", "Male"),
            "hispanic": hispanic,
            "race": race,
            "economic_disadvantaged": econ,
            "english_learner": ell,
            "disability": disability,
            "class_of": class_of.astype(np.int16),
            "home_district": home.astype(np.int8),
            "latent_risk": z,
            "state_student_id": state_id.astype(str),
        }
    )

    # --- year by year -------------------------------------------------------------
    status = np.zeros(
        n, dtype=np.int8
    )  # 0 in school / not yet, 1 grad, 2 drop, 3 gone, 4 no diploma
    exit_year = np.zeros(n, dtype=np.int16)
    district = home.copy()
    seg_cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "person_key",
            "year_index",
            "district",
            "school",
            "grade",
            "entry_day",
            "exit_day",
            "exit_type",
            "risk",
            "abs_shift",
            "mark_shift",
            "n_abs",
        )
    }
    prev_absence = np.full(n, np.nan)
    year_abs = np.zeros(n)
    year_days = np.zeros(n)
    part_cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "person_key",
            "program",
            "year_index",
            "begin_day",
            "end_day",
            "sessions_offered",
            "sessions_attended",
            "effect_attendance_pp",
            "effect_marks",
            "district",
        )
    }
    schools_per = np.array([d.schools for d in DISTRICTS])  # [d, level]
    school_hash = rng.integers(0, 1 << 30, size=n)
    exit_types = np.array(
        ["End of school year", "Transferred", "Dropout", "Graduated", "Transferred"]
    )
    for ti, t in enumerate(school_years):
        say(f"simulating school year {school_year_label(t, SCHOOL_YEAR_START_MONTH)}")
        grade = t - class_of + 12
        active = np.nonzero((status == 0) & (grade >= 0) & (grade <= 12))[0]
        m = len(active)
        g = grade[active]
        if ti > 0:
            move = (rng.random(m) < 0.045) & (g > 0)
            shift = rng.integers(1, n_d, size=int(move.sum()))
            district[active[move]] = (district[active[move]] + shift) % n_d
        d0 = district[active]
        r = 0.85 * z[active] + 0.5 * rng.normal(size=m)
        # events during the year: 1 transfer within the community, 2 dropout, 4 move away
        u = rng.random(m)
        # outcomes follow risk closely enough that an early-warning model can be
        # validated: with the latent risk itself, AUC ≈ 0.89 for non-graduation
        hazard = np.where(g >= 9, _sigmoid(-6.2 + 2.5 * r), 0.0)
        event = np.zeros(m, dtype=np.int8)
        event[u < 0.02] = 1
        event[(u >= 0.02) & (u < 0.035)] = 4
        event[(u >= 0.035) & (u < 0.035 + hazard)] = 2
        event_day = rng.integers(20, 165, size=m)
        # first segment
        exit1 = np.where(event > 0, event_day, INSTRUCTIONAL_DAYS)
        extype1 = np.where(
            event == 1, 1, np.where(event == 2, 2, np.where(event == 4, 4, 0))
        )
        # finishing grade 12: diploma, or not
        fin12 = (event == 0) & (g == 12)
        no_diploma = fin12 & (rng.random(m) < _sigmoid(-4.5 + 2.5 * r))
        graduate = fin12 & ~no_diploma
        extype1 = np.where(graduate, 3, extype1)
        # second segment for transfers within the community
        movers = np.nonzero(event == 1)[0]
        d1 = (d0[movers] + rng.integers(1, n_d, size=len(movers))) % n_d
        district[active[movers]] = d1
        # programs, decided before outcomes (their effects change them)
        prior = prev_absence[active]
        seen = np.where(
            np.isnan(prior),
            0.55 * econ[active] + 0.35 * disability[active] - 0.25,
            (np.nan_to_num(prior) - 0.06) / 0.05,
        )
        abs_shift = np.zeros(m)
        mark_shift = np.zeros(m)
        for pi, prog in enumerate(PROGRAMS):
            served = np.isin(
                d0,
                [i for i, d in enumerate(DISTRICTS) if d.partner_id in prog.districts],
            )
            eligible = served & (g >= prog.grades[0]) & (g <= prog.grades[1])
            # programs recruit on what referrers can see: last year's attendance
            # (or, for a student new to the data, their family's circumstances) —
            # selection on observables, which matching on the baseline can remove
            logit = np.log(prog.take_up / (1 - prog.take_up)) + prog.targets_risk * seen
            joins = eligible & (rng.random(m) < _sigmoid(logit))
            k = np.nonzero(joins)[0]
            if len(k) == 0:
                continue
            begin = rng.integers(10, 40, size=len(k))
            end = np.minimum(rng.integers(110, 176, size=len(k)), exit1[k])
            end = np.maximum(end, begin + 5)
            offered = np.maximum(
                1, np.round(prog.sessions * (end - begin) / 150)
            ).astype(int)
            rate = rng.beta(4.0, 2.0, size=len(k))
            attended = rng.binomial(offered, rate)
            dose = np.clip(attended / (0.6 * prog.sessions), 0.0, 1.0)
            eff_att = prog.effect_attendance_pp * dose
            eff_mark = prog.effect_marks * dose
            abs_shift[k] += eff_att / 100.0
            mark_shift[k] += eff_mark
            for key, val in (
                ("person_key", pkey[active[k]]),
                ("program", np.full(len(k), pi)),
                ("year_index", np.full(len(k), ti)),
                ("begin_day", begin),
                ("end_day", end),
                ("sessions_offered", offered),
                ("sessions_attended", attended),
                ("effect_attendance_pp", eff_att),
                ("effect_marks", eff_mark),
                ("district", d0[k]),
            ):
                part_cols[key].append(np.asarray(val))
        # record segments
        level = np.where(g <= 5, 0, np.where(g <= 8, 1, 2))

        def school_of(dist: np.ndarray, lev: np.ndarray, who: np.ndarray) -> np.ndarray:
            count = schools_per[dist, lev]
            numbers: np.ndarray = dist * 100 + lev * 10 + (school_hash[who] % count)
            return numbers.astype(np.int32)

        for spell in (0, 1):
            if spell == 0:
                sel = np.arange(m)
                dist, entry, exit_, ext = d0, np.zeros(m, int), exit1, extype1
            else:
                sel = movers
                dist = d1
                entry = np.minimum(
                    event_day[movers] + rng.integers(2, 6, size=len(movers)), 175
                )
                exit_ = np.full(len(movers), INSTRUCTIONAL_DAYS)
                ext = np.where(g[movers] == 12, 3, 0)
            who = active[sel]
            # absences are drawn here, so next year's referrals can see them
            untreated = np.clip(
                _sigmoid(
                    -2.85
                    + 0.75 * r[sel]
                    + 0.12 * (g[sel] >= 9)
                    + 0.1 * risk_shift[dist]
                ),
                0.003,
                0.9,
            )
            spell_days = np.maximum(exit_ - entry, 0)
            spell_abs = rng.binomial(
                spell_days, np.clip(untreated - abs_shift[sel], 0.003, 0.9)
            )
            year_abs[who] += spell_abs
            year_days[who] += spell_days
            for key, val in (
                ("person_key", pkey[who]),
                ("year_index", np.full(len(sel), ti)),
                ("district", dist),
                ("school", school_of(dist, level[sel], who)),
                ("grade", g[sel]),
                ("entry_day", entry),
                ("exit_day", exit_),
                ("exit_type", ext),
                ("risk", r[sel]),
                ("abs_shift", abs_shift[sel]),
                ("mark_shift", mark_shift[sel]),
                ("n_abs", spell_abs),
            ):
                seg_cols[key].append(np.asarray(val))
        prev_absence[:] = np.nan
        enrolled = year_days > 0
        prev_absence[enrolled] = year_abs[enrolled] / year_days[enrolled]
        year_abs[:] = 0
        year_days[:] = 0
        # statuses after the year
        grads = active[graduate | ((event == 1) & (g == 12))]
        status[grads] = 1
        status[active[event == 2]] = 2
        status[active[event == 4]] = 3
        status[active[no_diploma]] = 4
        exit_year[active[(event == 2) | (event == 4) | no_diploma]] = t
        exit_year[grads] = t

    seg = {k: np.concatenate(v) for k, v in seg_cols.items()}
    seg["exit_type"] = exit_types[seg["exit_type"]]
    n_seg = len(seg["person_key"])
    seg["segment"] = np.arange(n_seg, dtype=np.int64)
    cal_flat = calendars.reshape(-1, INSTRUCTIONAL_DAYS)
    cal_row = seg["district"] * len(school_years) + seg["year_index"]
    seg["entry_date"] = cal_flat[cal_row, seg["entry_day"]]
    seg["exit_date"] = cal_flat[
        cal_row, np.minimum(seg["exit_day"], INSTRUCTIONAL_DAYS) - 1
    ]
    seg["school_year"] = np.asarray(school_years, dtype=np.int16)[seg["year_index"]]
    days = seg["exit_day"] - seg["entry_day"]

    outcome = np.array(
        ["enrolled", "graduated", "dropout", "moved_away", "no_diploma"]
    )[status]
    sim.tables["persons"] = (
        sim.tables["persons"]
        .append_column("outcome", pa.array(outcome))
        .append_column("exit_year", pa.array(exit_year))
    )

    # --- attendance ------------------------------------------------------------------
    say("simulating attendance")
    r = seg["risk"]
    g = seg["grade"]
    shift = risk_shift[seg["district"]]
    untreated_rate = np.clip(
        _sigmoid(-2.85 + 0.75 * r + 0.12 * (g >= 9) + 0.1 * shift), 0.003, 0.9
    )
    abs_rate = np.clip(untreated_rate - seg["abs_shift"], 0.003, 0.9)
    # the planted effect as it came out (a rate cannot fall below its floor)
    abs_realized = untreated_rate - abs_rate
    n_abs = seg["n_abs"]
    tardy_rate = _sigmoid(-3.6 + 0.45 * r)
    n_tardy = rng.binomial(days, tardy_rate)
    excused_share = np.clip(0.55 - 0.1 * r, 0.1, 0.9)

    def event_days(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        owner = np.repeat(seg["segment"], counts)
        span = np.repeat(days, counts)
        day = np.repeat(seg["entry_day"], counts) + (
            rng.random(len(owner)) * span
        ).astype(np.int64)
        key = _unique(owner * 256 + day)
        return key // 256, key % 256

    a_seg, a_day = event_days(n_abs)
    t_seg, t_day = event_days(n_tardy)
    clash = _member(t_seg * 256 + t_day, a_seg * 256 + a_day)
    t_seg, t_day = t_seg[~clash], t_day[~clash]
    excused = rng.random(len(a_seg)) < excused_share[a_seg]
    # category codes index ATTENDANCE_CATEGORIES; strings only at the Arrow boundary
    cat = np.concatenate([np.where(excused, 0, 1), np.full(len(t_seg), 2)]).astype(
        np.int8
    )
    ev_seg = np.concatenate([a_seg, t_seg])
    ev_day = np.concatenate([a_day, t_day])
    order = np.lexsort((cat, ev_day, ev_seg))
    ev_seg, ev_day, cat = ev_seg[order], ev_day[order], cat[order]
    sim.tables["attendance_events"] = pa.table(
        {
            "segment": ev_seg,
            "day_index": ev_day.astype(np.int16),
            "event_date": cal_flat[cal_row[ev_seg], ev_day],
            "category": _labels(cat, ATTENDANCE_CATEGORIES),
        }
    )

    # --- discipline ------------------------------------------------------------------
    say("simulating discipline")
    lam = (
        np.exp(-2.2 + 0.9 * r)
        * (g >= 3)
        * (days / INSTRUCTIONAL_DAYS)
        * np.where((g >= 6) & (g <= 9), 1.6, 1.0)
    )
    n_inc = rng.poisson(lam)
    i_seg = np.repeat(seg["segment"], n_inc)
    i_day = np.repeat(seg["entry_day"], n_inc) + (
        rng.random(len(i_seg)) * np.repeat(days, n_inc)
    ).astype(np.int64)
    ui = rng.random(len(i_seg))
    severe = _sigmoid(-3.0 + 0.7 * r[i_seg])
    behavior = np.where(
        ui < severe,
        "State Offense",
        np.where(ui < severe + 0.15, "School Violation", "School Code of Conduct"),
    )
    ua = rng.random(len(i_seg))
    action = np.select(
        [
            (behavior == "State Offense") & (ua < 0.1),
            behavior == "State Offense",
            (behavior == "School Violation") & (ua < 0.5),
            behavior == "School Violation",
            ua < 0.25,
            ua < 0.6,
        ],
        [
            "Expulsion",
            "Out of School Suspension",
            "Out of School Suspension",
            "In School Suspension",
            "In School Suspension",
            "Removal from Classroom",
        ],
        "Other",
    )
    length = np.select(
        [
            action == "Expulsion",
            action == "Out of School Suspension",
            action == "In School Suspension",
        ],
        [
            rng.integers(30, 91, len(i_seg)),
            rng.integers(1, 6, len(i_seg)),
            rng.integers(1, 3, len(i_seg)),
        ],
        rng.integers(0, 2, len(i_seg)) * 0.5,
    ).astype(float)
    sim.tables["discipline"] = pa.table(
        {
            "segment": i_seg,
            "incident_date": cal_flat[cal_row[i_seg], i_day],
            "behavior": behavior,
            "discipline": action,
            "length_days": length,
        }
    )

    # --- course marks ----------------------------------------------------------------
    say("simulating course marks")
    ability = rng.normal(0, 4.0, n)
    pk_index = seg["person_key"] - 1
    rows = []
    mark_effect_sum = np.zeros(n_seg)
    mark_count = np.zeros(n_seg)
    terms = ("Fall Semester", "Spring Semester")
    for ti_, last_day in enumerate((FALL_END, INSTRUCTIONAL_DAYS - 1)):
        covered = (
            (seg["grade"] >= 6)
            & (seg["entry_day"] <= last_day - 30)
            & (seg["exit_day"] > last_day)
        )
        for si, (_code, _title, _subject, ms, hs, offset) in enumerate(SUBJECTS):
            takes = covered & np.where(seg["grade"] >= 9, hs, ms)
            s = np.nonzero(takes)[0]
            mu = (
                80.5 - 7.5 * r[s] + ability[pk_index[s]] + seg["mark_shift"][s] + offset
            )
            noise = rng.normal(0, 9.0, len(s))
            mark = np.clip(np.round(mu + noise), 30, 100)
            # the same mark without any program: the realized effect (marks clip)
            untreated = np.clip(np.round(mu - seg["mark_shift"][s] + noise), 30, 100)
            rows.append((s, ti_, si, mark))
            mark_effect_sum += np.bincount(s, weights=mark - untreated, minlength=n_seg)
            mark_count += np.bincount(s, minlength=n_seg)
    m_seg = np.concatenate([x[0] for x in rows])
    m_term = np.concatenate([np.full(len(x[0]), x[1], dtype=np.int8) for x in rows])
    m_subj = np.concatenate([np.full(len(x[0]), x[2], dtype=np.int8) for x in rows])
    m_mark = np.concatenate([x[3] for x in rows])
    order = np.lexsort((m_subj, m_term, m_seg))
    m_subj = m_subj[order]
    sim.tables["marks"] = pa.table(
        {
            "segment": m_seg[order],
            "term": _labels(m_term[order], terms),
            "course_prefix": _labels(m_subj, [x[0] for x in SUBJECTS]),
            "course_title": _labels(m_subj, [x[1] for x in SUBJECTS]),
            "academic_subject": _labels(m_subj, [x[2] for x in SUBJECTS]),
            "numeric_grade": m_mark[order],
        }
    )

    # --- assessments -----------------------------------------------------------------
    say("simulating assessments")
    test_day = 150
    tested = (
        ((g >= 3) & (g <= 8) | (g == 11))
        & (seg["entry_day"] <= test_day)
        & (seg["exit_day"] > test_day)
    )
    s = np.nonzero(tested)[0]
    a_rows = []
    for subject, off in (("English Language Arts", 0.0), ("Mathematics", -10.0)):
        base = 2400 + 30 * g[s]
        score = np.round(
            base
            + off
            - 42 * r[s]
            + 4 * ability[pk_index[s]]
            + 4 * seg["mark_shift"][s]
            + rng.normal(0, 35, len(s))
        )
        level = np.select(
            [score < base - 45, score < base, score < base + 60],
            ["Below Basic", "Basic", "Proficient"],
            "Advanced",
        )
        a_rows.append((s, subject, score, level))
    as_seg = np.concatenate([x[0] for x in a_rows])
    sim.tables["assessments"] = pa.table(
        {
            "segment": as_seg,
            "academic_subject": np.concatenate(
                [np.full(len(x[0]), x[1]) for x in a_rows]
            ),
            "administration_date": cal_flat[cal_row[as_seg], test_day],
            "scale_score": np.concatenate([x[2] for x in a_rows]),
            "performance_level": np.concatenate([x[3] for x in a_rows]),
        }
    )

    seg_table = pa.table(
        {
            k: seg[k]
            for k in (
                "segment",
                "person_key",
                "school_year",
                "year_index",
                "district",
                "school",
                "grade",
                "entry_day",
                "exit_day",
                "entry_date",
                "exit_date",
                "exit_type",
                "risk",
            )
        }
    )
    sim.tables["segments"] = seg_table.append_column(
        "absence_rate_planted", pa.array(abs_rate)
    )

    # --- programs --------------------------------------------------------------------
    say("simulating program sessions")
    part = {k: np.concatenate(v) if v else np.array([]) for k, v in part_cols.items()}
    n_part = len(part["person_key"])
    part["participation"] = np.arange(n_part, dtype=np.int64)
    hours_each = np.array([p.hours_per_session for p in PROGRAMS])[part["program"]]
    # sessions attended fall on instructional days spread over [begin, end)
    owner = np.repeat(part["participation"], part["sessions_attended"])
    lo = np.repeat(part["begin_day"], part["sessions_attended"])
    span = np.repeat(part["end_day"] - part["begin_day"], part["sessions_attended"])
    session_day = lo + (rng.random(len(owner)) * span).astype(np.int64)
    session_key = _unique(owner * 256 + session_day)
    owner, session_day = session_key // 256, session_key % 256
    p_cal = part["district"] * len(school_years) + part["year_index"]
    sim.tables["program_sessions"] = pa.table(
        {
            "participation": owner,
            "event_date": cal_flat[p_cal[owner], session_day],
            "hours": hours_each[owner],
        }
    )
    attended_days = np.bincount(owner, minlength=n_part)
    realized_att, realized_mark = _realized_effects(
        seg, part, abs_realized, mark_effect_sum, mark_count, len(school_years)
    )
    sim.tables["participation"] = (
        pa.table(
            {
                "participation": part["participation"],
                "person_key": part["person_key"].astype(np.int64),
                "program_id": np.array([p.program_id for p in PROGRAMS])[
                    part["program"]
                ],
                "school_year": np.asarray(school_years, dtype=np.int16)[
                    part["year_index"]
                ],
                "begin_date": cal_flat[p_cal, part["begin_day"]],
                "end_date": cal_flat[p_cal, part["end_day"] - 1],
                "sessions_offered": part["sessions_offered"],
                "sessions_attended": attended_days,
                "hours": attended_days * hours_each,
                "effect_attendance_pp": part["effect_attendance_pp"],
                "effect_marks": part["effect_marks"],
                "effect_attendance_pp_realized": realized_att,
                "effect_marks_realized": realized_mark,
                # assessments move by 4 scale points per mark point (see above)
                "effect_scale_score": 4.0 * part["effect_marks"],
            }
        )
        if n_part
        else pa.table({})
    )

    # --- college ---------------------------------------------------------------------
    say("simulating college")
    sim.tables["college"] = _simulate_college(rng, sim, z, ability, last_year)
    return sim


def _realized_effects(
    seg: dict[str, np.ndarray],
    part: dict[str, np.ndarray],
    abs_realized: np.ndarray,
    mark_effect_sum: np.ndarray,
    mark_count: np.ndarray,
    n_years: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each participation's planted effect as it came out in its student's year:
    attendance (percentage points, weighted by days over the year's spells) and
    course marks (points, over the year's marks; NaN in a year without marks),
    shared among a student's programs in proportion to their planted effects."""
    key = seg["person_key"] * n_years + seg["year_index"]
    days = (seg["exit_day"] - seg["entry_day"]).astype(float)
    order = np.argsort(key, kind="stable")
    keys, first = np.unique(key[order], return_index=True)
    group = np.empty(len(key), dtype=np.int64)
    group[order] = np.repeat(np.arange(len(keys)), np.diff(np.append(first, len(key))))

    def per_year(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
        total = np.bincount(group, weights=values * weights, minlength=len(keys))
        norm = np.bincount(group, weights=weights, minlength=len(keys))
        return np.divide(total, norm, out=np.zeros(len(keys)), where=norm > 0)

    att_ratio = per_year(
        np.divide(
            abs_realized,
            seg["abs_shift"],
            out=np.zeros(len(key)),
            where=seg["abs_shift"] > 0,
        ),
        days,
    )
    mark_ratio = per_year(
        np.divide(
            mark_effect_sum,
            mark_count * seg["mark_shift"],
            out=np.zeros(len(key)),
            where=(seg["mark_shift"] > 0) & (mark_count > 0),
        ),
        mark_count,
    )
    pkey = part["person_key"] * n_years + part["year_index"]
    at = np.clip(np.searchsorted(keys, pkey), 0, max(len(keys) - 1, 0))
    found = keys[at] == pkey
    realized_att = np.where(found, part["effect_attendance_pp"] * att_ratio[at], 0.0)
    # no marks that year (grades below 6): no effect on marks to speak of
    has_marks = np.bincount(group, weights=mark_count, minlength=len(keys)) > 0
    realized_mark = np.where(
        found & has_marks[at], part["effect_marks"] * mark_ratio[at], np.nan
    )
    return realized_att, realized_mark


def _simulate_college(
    rng: np.random.Generator,
    sim: Simulation,
    z: np.ndarray,
    ability: np.ndarray,
    last_year: int,
) -> pa.Table:
    """Terms of college enrolment for graduates, one row per term."""
    persons = sim.tables["persons"]
    outcome = np.asarray(persons["outcome"].to_pylist())
    grad = np.nonzero(outcome == "graduated")[0]
    grad_year = np.asarray(persons["exit_year"].to_numpy())[grad].astype(int)
    k = len(grad)
    zz = z[grad]
    aa = ability[grad]
    p_enrol = _sigmoid(0.1 - 0.8 * zz + 0.12 * aa)
    enrolled_fall = rng.random(k) < p_enrol
    delayed = ~enrolled_fall & (rng.random(k) < 0.12)
    start_year = np.where(enrolled_fall, grad_year, grad_year + rng.integers(1, 3, k))
    goes = enrolled_fall | delayed
    four_year = rng.random(k) < _sigmoid(0.1 - 1.0 * zz + 0.15 * aa)
    inst_ids = np.array([i[0] for i in INSTITUTIONS])
    levels = np.array([i[2] for i in INSTITUTIONS])
    shares = np.array([i[4] for i in INSTITUTIONS])
    inst = np.empty(k, dtype=object)
    for lvl, mask in (("Four-year", four_year), ("Two-year", ~four_year)):
        sel = levels == lvl
        p = shares[sel] / shares[sel].sum()
        inst[mask] = inst_ids[sel][rng.choice(sel.sum(), size=int(mask.sum()), p=p)]
    persist_p = np.where(four_year, _sigmoid(1.6 - 0.6 * zz), _sigmoid(0.5 - 0.6 * zz))
    remedial_ela = goes & (
        rng.random(k) < np.where(four_year, 0.08, 0.30) * np.exp(0.5 * zz)
    )
    remedial_math = goes & (
        rng.random(k) < np.where(four_year, 0.12, 0.40) * np.exp(0.5 * zz)
    )
    # years enrolled: 1 + geometric persistence, capped at 6
    years_in = np.ones(k, dtype=int)
    cont = goes.copy()
    for _ in range(5):
        cont &= rng.random(k) < persist_p
        years_in += cont
    degree_after = np.where(four_year, 4, 2)
    degree = (
        goes
        & (years_in >= degree_after)
        & (rng.random(k) < np.where(four_year, 0.8, 0.6))
    )
    years_in = np.where(degree, degree_after, years_in)
    full_time = rng.random(k) < np.where(four_year, 0.9, 0.55)
    rows: dict[str, list[np.ndarray]] = {
        c: []
        for c in (
            "person_key",
            "institution_id",
            "term_name",
            "term_begin_date",
            "term_end_date",
            "enrollment_status",
            "credits_attempted",
            "credits_earned",
            "term_gpa",
        )
    }
    for yr in range(6):
        for term, b, e in (("Fall", "08-25", "12-15"), ("Spring", "01-15", "05-10")):
            # Fall of start_year + yr, then Spring of the next calendar year; data
            # run through the fall term of the last school year's calendar year.
            cal_year = start_year + yr + (1 if term == "Spring" else 0)
            on = goes & (years_in > yr) & (cal_year <= last_year)
            idx = np.nonzero(on)[0]
            if len(idx) == 0:
                continue
            attempted = np.where(
                full_time[idx],
                rng.integers(12, 17, len(idx)),
                rng.integers(4, 10, len(idx)),
            ).astype(float)
            gpa = np.clip(
                np.round(
                    3.0
                    - 0.35 * zz[idx]
                    + 0.05 * aa[idx]
                    + rng.normal(0, 0.5, len(idx)),
                    2,
                ),
                0,
                4,
            )
            earned = np.where(gpa < 1.5, np.floor(attempted * 0.5), attempted)
            jan1 = (
                (cal_year[idx] - 1970).astype("datetime64[Y]").astype("datetime64[D]")
            )
            begin = jan1 + (np.datetime64(f"2001-{b}") - np.datetime64("2001-01-01"))
            end = jan1 + (np.datetime64(f"2001-{e}") - np.datetime64("2001-01-01"))
            rows["person_key"].append(grad[idx] + 1)
            rows["institution_id"].append(inst[idx])
            rows["term_name"].append(np.char.add(f"{term} ", cal_year[idx].astype(str)))
            rows["term_begin_date"].append(begin)
            rows["term_end_date"].append(end)
            rows["enrollment_status"].append(
                np.where(full_time[idx], "Full-time", "Part-time")
            )
            rows["credits_attempted"].append(attempted)
            rows["credits_earned"].append(earned)
            rows["term_gpa"].append(gpa)
    terms = pa.table(
        {
            c: pa.array(np.concatenate(v))
            if c != "institution_id"
            else pa.array(np.concatenate(v).astype(str))
            for c, v in rows.items()
        }
    )
    sim.tables["college_students"] = pa.table(
        {
            "person_key": (grad + 1).astype(np.int64),
            "graduation_year": grad_year.astype(np.int16),
            "enrolls": goes,
            "start_year": start_year.astype(np.int16),
            "four_year": four_year,
            "institution_id": inst.astype(str),
            "remedial_ela": remedial_ela,
            "remedial_math": remedial_math,
            "degree": degree,
            "years_enrolled": years_in * goes,
        }
    )
    return terms
