"""Warehouse settings: declared once as a table of (name, default, help).

``backbone.toml`` in a warehouse folder holds the values; anything missing takes its
default. The same table drives the written file's comments, ``backbone settings`` and
the README's settings table (a test keeps the README in step).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backbone.errors import SettingsError

__all__ = ["SETTINGS", "Setting", "Settings", "render_settings_toml", "toml_value"]


@dataclass(frozen=True)
class Setting:
    """One setting: dotted name (``section.key``), default, and help for people."""

    name: str
    default: Any
    help: str

    @property
    def section(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.name.split(".", 1)[1]


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "warehouse.name",
        "Backbone warehouse",
        "Name shown by `backbone info` and, later, on every page and report.",
    ),
    Setting(
        "engine.threads",
        0,
        "DuckDB worker threads; 0 lets DuckDB use every core.",
    ),
    Setting(
        "engine.memory_limit",
        "1GB",
        "DuckDB memory limit such as '4GB'; work beyond it spills to disk. Empty lets "
        "DuckDB use 80% of RAM.",
    ),
    Setting(
        "engine.kind",
        "duckdb",
        "Where the heavy stages (linking, indicators, an evaluation's person-years) "
        "run: 'duckdb' (this machine, the default) or 'spark' (a Spark cluster: "
        "engine.spark_remote or engine.spark_master). `--engine` overrides it for "
        "one run.",
    ),
    Setting(
        "engine.spark_master",
        "local[2]",
        "Spark master URL when engine.kind is 'spark': 'local[N]' (N cores of this "
        "machine) or 'spark://host:7077' (a standalone cluster).",
    ),
    Setting(
        "engine.spark_remote",
        "",
        "Spark Connect URL such as 'sc://host:15002' (a managed cluster); when "
        "set, it is used instead of engine.spark_master.",
    ),
    Setting(
        "engine.spark_driver_memory",
        "4g",
        "Memory of the Spark driver this process starts (Spark's notation, '4g'); "
        "the driver plans the jobs and receives no rows. Not used with "
        "engine.spark_remote.",
    ),
    Setting(
        "engine.spark_exchange",
        "",
        "Folder or object-store URI (s3://, gs://, hdfs://) that both the warehouse "
        "and the Spark cluster read and write: each job's inputs and results pass "
        "there as Parquet and are deleted after. Empty: the warehouse's own "
        "'exchange' folder (for a cluster on this machine or a shared mount).",
    ),
    Setting(
        "engine.lock_wait_seconds",
        600,
        "How long a command waits for another process that holds the warehouse "
        "(writing) before it gives up and says who holds it.",
    ),
    Setting(
        "calendar.school_year_start_month",
        7,
        "Month (1-12) a school year starts; dates from then on belong to the "
        "next school year, named by its ending year as Ed-Fi does (2025-26 is 2026).",
    ),
    Setting(
        "ingest.earliest_birth_year",
        1900,
        "Birth dates and years before this year are refused as not plausible (a "
        "partnership of school children only may raise it; adult learners, parents "
        "and alumni need it low).",
    ),
    Setting(
        "governance.min_cell_size",
        10,
        "Smallest count any aggregate may show where no agreement sets a stricter "
        "minimum; smaller cells are suppressed.",
    ),
    Setting(
        "governance.audit_capacity",
        20000,
        "Most cells released with suppression from one entity and provider before "
        "the gate stops auditing more of them and refuses (see docs/RELEASES.md: "
        "switch the agreement to differential privacy instead); 0 means no bound.",
    ),
    Setting(
        "linkage.auto_link_probability",
        0.95,
        "Pairs the model scores at or above this match probability are always "
        "linked without review; lower ones too, down to where "
        "linkage.target_precision allows.",
    ),
    Setting(
        "linkage.target_precision",
        0.99,
        "Each run links, without review, the model's pairs from the lowest "
        "probability at which the linked pairs' own probabilities still average "
        "this (and never below 0.5); the run says where that was.",
    ),
    Setting(
        "linkage.review_probability",
        0.5,
        "Pairs scored from here up to the run's link threshold wait for clerical "
        "review; below it they are not linked.",
    ),
    Setting(
        "linkage.twins_to_review",
        False,
        "Pairs born the same day whose first names have nothing in common (twins, "
        "as often as one person) wait for review however high the model scores them; "
        "off, the model decides (and a partner holding both twins keeps them apart).",
    ),
    Setting(
        "linkage.auto_link_dice",
        0.95,
        "Privacy-preserving pairs whose encodings' Dice similarity is at or above "
        "this are always linked. Below it a run links from the lowest Dice at which "
        "the pairs, as estimated from the similarities themselves, are right as often "
        "as linkage.target_precision asks.",
    ),
    Setting(
        "linkage.review_dice",
        0.7,
        "Encoded pairs below this Dice similarity are never linked; from here up to "
        "the run's Dice threshold they wait for review.",
    ),
    Setting(
        "linkage.memory_limit",
        "6GB",
        "Memory cap of the linkage scratch database; work beyond it spills to disk.",
    ),
    Setting(
        "web.session_idle_minutes",
        30,
        "A web session unused this long ends (the user signs in again); any session "
        "ends after 12 hours.",
    ),
    Setting(
        "security.sign_in_failures_before_lockout",
        5,
        "Failed sign-ins in a row (password or second-factor code, at any door) "
        "after which the user is locked out; before that, after two, each failure "
        "doubles the wait before the next attempt (1, 2, 4 s ...).",
    ),
    Setting(
        "security.lockout_minutes",
        15,
        "How long a locked-out user stays locked out; 0: until a steward admin "
        "unlocks them (`backbone user unlock`, audited; an admin's API token is not "
        "locked out, so keep one). Every attempt is audited.",
    ),
    Setting(
        "security.sign_in_max_delay_seconds",
        60,
        "The longest wait imposed after failed sign-ins, of a user or of one "
        "source (an address, or this machine's account): a source is slowed, never "
        "locked out.",
    ),
    Setting(
        "api.max_upload_bytes",
        2 * 1024**3,
        "The largest request the API takes (a file submitted through it); a "
        "larger one is refused (413) as it arrives, before anything is written.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}
# settings renamed since: an older backbone.toml keeps working
_RENAMED = {
    "web.sign_in_failures_before_lockout": "security.sign_in_failures_before_lockout",
    "web.lockout_minutes": "security.lockout_minutes",
}


# where the heavy stages may run (``engine.kind``, ``--engine``)
ENGINE_KINDS = ("duckdb", "spark")


@dataclass(frozen=True)
class Settings:
    """Resolved settings of one warehouse (defaults overlaid with backbone.toml)."""

    values: dict[str, Any]

    @classmethod
    def defaults(cls) -> Settings:
        return cls({s.name: s.default for s in SETTINGS})

    @classmethod
    def load(cls, path: Path) -> Settings:
        """Read ``backbone.toml``; unknown keys and wrong types are errors naming them."""
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(
                f"{path}: is not valid TOML ({exc}). Fix the file or delete it to "
                "restore the defaults."
            ) from None
        values = {s.name: s.default for s in SETTINGS}
        for section, table in raw.items():
            if not isinstance(table, dict):
                raise SettingsError(
                    f"{path}: '{section}' must be a [section]; known settings are "
                    f"{', '.join(sorted(_BY_NAME))}."
                )
            for key, value in table.items():
                name = f"{section}.{key}"
                if name in _RENAMED:
                    if _RENAMED[name].partition(".")[2] in raw.get(
                        _RENAMED[name].partition(".")[0], {}
                    ):
                        raise SettingsError(
                            f"{path}: '{name}' is now '{_RENAMED[name]}', which "
                            "is set too; keep one of them."
                        )
                    name = _RENAMED[name]
                setting = _BY_NAME.get(name)
                if setting is None:
                    raise SettingsError(
                        f"{path}: unknown setting '{name}'. Known settings are "
                        f"{', '.join(sorted(_BY_NAME))}; see `backbone settings`."
                    )
                values[name] = _coerce(path, setting, value)
        return cls(values)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def _coerce(path: Path, setting: Setting, value: Any) -> Any:
    expected = type(setting.default)
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise SettingsError(
            f"{path}: setting '{setting.name}' must be a whole number, not {value!r}."
        )
    if expected is bool and not isinstance(value, bool):
        raise SettingsError(
            f"{path}: setting '{setting.name}' must be true or false, not {value!r}."
        )
    if expected is str and not isinstance(value, str):
        raise SettingsError(
            f"{path}: setting '{setting.name}' must be text in quotes, not {value!r}."
        )
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(
                f"{path}: setting '{setting.name}' must be a number, not {value!r}."
            )
        if not 0 < value <= 1:
            raise SettingsError(
                f"{path}: setting '{setting.name}' must be between 0 and 1, not {value}."
            )
        value = float(value)
    if setting.name == "ingest.earliest_birth_year" and not 1800 <= value <= 2100:
        raise SettingsError(
            f"{path}: setting '{setting.name}' must be a year from 1800 on (a "
            f"partnership of children may raise it), not {value}."
        )
    if setting.name == "calendar.school_year_start_month" and not 1 <= value <= 12:
        raise SettingsError(
            f"{path}: setting '{setting.name}' must be a month from 1 to 12, "
            f"not {value}."
        )
    if setting.name == "engine.kind" and value not in ENGINE_KINDS:
        raise SettingsError(
            f"{path}: setting 'engine.kind' must be one of "
            f"{', '.join(map(repr, ENGINE_KINDS))}, not {value!r}."
        )
    if isinstance(value, int) and value < 0:
        raise SettingsError(f"{path}: setting '{setting.name}' cannot be negative.")
    return value


def toml_value(value: Any) -> str:
    """A setting's value as backbone.toml spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return str(value)


def render_settings_toml(overrides: dict[str, Any] | None = None) -> str:
    """The text of a new backbone.toml: every setting, its help as a comment."""
    values = {s.name: s.default for s in SETTINGS} | (overrides or {})
    lines = [
        "# Backbone warehouse settings. Every setting is listed with its default;",
        "# `backbone settings` explains them. Unknown keys are refused.",
    ]
    section = None
    for setting in SETTINGS:
        if setting.section != section:
            section = setting.section
            lines += ["", f"[{section}]"]
        lines.append(f"# {setting.help}")
        lines.append(f"{setting.key} = {toml_value(values[setting.name])}")
    return "\n".join(lines) + "\n"
