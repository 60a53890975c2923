"""The demo's privacy-preserving linkage project, played out on one machine.

Every partner encodes its own records with the project's shared secret (as each
would on its own machine, from the identity fields it holds, its address and
postal code among them where it has them) and sends the
encodings; the partners named ``encoded_only`` send nothing else, so the warehouse
holds none of their names or birth dates. Used by the tests and ``bench/pprl.py``
to compare linkage with and without clear text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from backbone.engines import arrow
from backbone.linkage.pprl import EncodedRecord, encode_columns, encodings_csv

if TYPE_CHECKING:
    from backbone.governance import Principal
    from backbone.warehouse import Warehouse

__all__ = ["play_pprl_project"]


def play_pprl_project(
    wh: Warehouse,
    secret: bytes,
    workdir: Path,
    *,
    encoded_only: Iterable[str] = ("c02-eastside",),
    project: str = "demo-linkage",
    uploaders: Mapping[str, Principal] | None = None,
    steward_id: str = "steward",
) -> dict[str, int]:
    """Encode and submit every partner's records, each sent by the partner's
    uploader (default: the demo's ``PARTNER.uploader``); returns encodings per
    partner."""
    hidden = set(encoded_only)
    partners = [
        r[0]
        for r in wh._con.execute(
            "SELECT DISTINCT partner_id FROM identity.partner_record ORDER BY 1"
        ).fetchall()
    ]
    sent: dict[str, int] = {}
    for partner in partners:
        people = arrow(
            wh._con,
            "SELECT local_id, first_name, last_surname AS last_name, birth_date, "
            "birth_sex AS sex, address, postal_code "
            "FROM identity.partner_record WHERE partner_id = ? ORDER BY local_id",
            [partner],
        )
        encoded = encode_columns(people, secret, project=project)
        path = workdir / f"{partner}-encodings.csv"
        path.write_bytes(
            encodings_csv(
                EncodedRecord(i, c)
                for i, c in zip(
                    encoded["local_id"].to_pylist(),
                    encoded["clk"].to_pylist(),
                    strict=True,
                )
            )
        )
        sender = (
            uploaders[partner]
            if uploaders is not None
            else wh.users.get(f"{partner}.uploader")
        )
        with wh.session(sender) as s:
            sent[partner] = wh.linkage.add_encodings(s, partner, path, project=project)
    # the encoded-only partners never sent their names: remove what the demo loaded
    steward = wh.users.get(steward_id)
    for partner in sorted(hidden):
        with wh.session(steward) as s:
            wh.linkage.withdraw_identifying(s, partner)
    return sent
