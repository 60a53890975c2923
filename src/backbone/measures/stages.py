"""What the reports built from several measures read: the stages below them.

The scorecard, the charts and "what we get" each read the indicators, the risk
model, the partners and the settings. They take this, not the warehouse (a layer
above the measures); :class:`backbone.warehouse.Warehouse` is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from backbone.measures.indicators import Indicators
    from backbone.measures.risk import RiskModels
    from backbone.partners import PartnerRegistry
    from backbone.settings import Settings


class MeasureStages(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def partners(self) -> PartnerRegistry: ...

    @property
    def indicators(self) -> Indicators: ...

    @property
    def risk(self) -> RiskModels: ...
