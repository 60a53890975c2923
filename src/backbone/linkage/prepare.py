"""Standardizing partner records for linkage: pure SQL builders.

Every partner spells a person differently (accents, upper case, hyphens, nicknames,
day and month swapped). Linkage compares standardized forms: lower-case ASCII names,
the surname's parts, every formal name a first name may stand for, the birth date
with day and month swapped, a tidied address. Records are numbered (``unique_id``)
so that pairs and clusters are integers, not strings.
"""

from __future__ import annotations

from importlib import resources

import pyarrow.csv as pacsv

from backbone.engines import Connection, create_table_as, registered

__all__ = [
    "LINKAGE_COLUMNS",
    "linkage_input_sql",
    "load_nicknames",
    "name_sql",
]

LINKAGE_COLUMNS = (
    "unique_id",
    "partner_id",
    "local_id",
    "first_name",
    "middle_name",
    "last_name",
    "surname_parts",
    "first_forms",
    "first_canon",
    "birth_date",
    "birth_date_swapped",
    "birth_year",
    "birth_month_day",
    "sex",
    "address",
    "address_number",
    "street",
    "postal_code",
    "schools",
    "school_years",
    "reports_school",
    "state_student_id",
)
"""The columns of the linkage input, in order."""


def name_sql(column: str) -> str:
    """A name as lower-case ASCII letters only, NULL when nothing is left."""
    return (
        f"nullif(regexp_replace(lower(strip_accents({column})), '[^a-z]', '', 'g'), '')"
    )


def load_nicknames(con: Connection, table: str = "linkage_nickname") -> None:
    """Create ``table(name, formals)``: each first name and the formal names it may shorten."""
    path = resources.files("backbone.linkage") / "data" / "nicknames.csv"
    with resources.as_file(path) as p:
        pairs = pacsv.read_csv(p)
    with registered(con, linkage_nickname_csv=pairs):
        create_table_as(
            con,
            table,
            f"""
            SELECT {name_sql("nickname")} AS name,
                   list_distinct(list({name_sql("name")})) AS formals
            FROM linkage_nickname_csv GROUP BY 1
            """,
            replace=True,
            temporary=True,
        )


def linkage_input_sql(
    source: str = "identity.partner_record",
    nicknames: str = "linkage_nickname",
    where: str = "TRUE",
) -> str:
    """SELECT the standardized linkage input from partner records.

    ``source`` has the identifying columns of ``identity.partner_record``,
    ``schools`` (the names of the schools the record is known at) and
    ``school_years`` ("school|school year") (see
    :func:`backbone.linkage.link.records_sql`).

    ``first_forms`` holds the first name and every formal name it may shorten, so
    "Bill" and "William" share a form; ``first_canon`` is the alphabetically first
    formal name (a blocking key). ``birth_date_swapped`` is the birth date with day
    and month exchanged, where that is still a date; ``birth_month_day`` the date
    without its year (a year mistyped); ``street`` the address's letters alone.
    """
    return f"""
    WITH std AS (
        SELECT partner_id, local_id,
               {name_sql("first_name")} AS first_name,
               {name_sql("middle_name")} AS middle_name,
               {name_sql("last_surname")} AS last_name,
               list_filter(
                   string_split_regex(
                       regexp_replace(lower(strip_accents(last_surname)), '[^a-z -]', '', 'g'),
                       '[ -]+'),
                   lambda part: length(part) > 1) AS surname_parts,
               birth_date,
               CASE WHEN day(birth_date) <= 12 AND day(birth_date) <> month(birth_date)
                    THEN make_date(year(birth_date), day(birth_date), month(birth_date))
               END AS birth_date_swapped,
               year(birth_date) AS birth_year,
               strftime(birth_date, '%m-%d') AS birth_month_day,
               CASE lower(birth_sex) WHEN 'male' THEN 'm' WHEN 'female' THEN 'f' END AS sex,
               nullif(regexp_replace(lower(trim(address)), '[^a-z0-9]+', ' ', 'g'), '')
                   AS address,
               nullif(substr(regexp_replace(postal_code, '[^0-9]', '', 'g'), 1, 5), '')
                   AS postal_code,
               nullif(list_transform(schools, lambda x:
                   trim(regexp_replace(lower(strip_accents(x)), '[^a-z0-9]+', ' ', 'g'))), [])
                   AS schools,
               nullif(list_transform(school_years, lambda x:
                   trim(regexp_replace(lower(strip_accents(x)), '[^a-z0-9|]+', ' ', 'g'))), [])
                   AS school_years,
               coalesce(reports_school, FALSE) AS reports_school,
               nullif(trim(state_student_id), '') AS state_student_id
        FROM {source}
        WHERE {where}
    )
    SELECT row_number() OVER (ORDER BY std.partner_id, std.local_id) AS unique_id,
           std.partner_id, std.local_id, std.first_name, std.middle_name, std.last_name,
           std.surname_parts,
           CASE WHEN std.first_name IS NULL THEN NULL
                ELSE list_distinct(list_append(coalesce(n.formals, []), std.first_name))
           END AS first_forms,
           coalesce(list_min(n.formals), std.first_name) AS first_canon,
           std.birth_date, std.birth_date_swapped, std.birth_year, std.birth_month_day,
           std.sex, std.address,
           nullif(regexp_extract(std.address, '^([0-9]+)', 1), '') AS address_number,
           -- the street's letters alone: a space lost or added, or the house number
           -- missing, leaves it the same
           nullif(regexp_replace(std.address, '[^a-z]', '', 'g'), '') AS street,
           std.postal_code, std.schools, std.school_years, std.reports_school, std.state_student_id
    FROM std LEFT JOIN {nicknames} n ON n.name = std.first_name
    """
