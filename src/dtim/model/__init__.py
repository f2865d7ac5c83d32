"""Pure data types of DTIM: indicators, sightings, peers, markings and time."""

from dtim.model.clock import Clock, FakeClock, SystemClock
from dtim.model.ids import IndicatorId, PeerId, indicator_id
from dtim.model.indicator import Indicator, JsonObject, JsonValue, make_indicator, merge
from dtim.model.normalize import defang, infer_type, normalize, refang
from dtim.model.peer import Peer, PeerStatus
from dtim.model.position import TailPosition
from dtim.model.scope import Scope
from dtim.model.sighting import Evidence, Sighting
from dtim.model.tlp import Tlp
from dtim.model.types import IndicatorType

__all__ = [
    "Clock",
    "Evidence",
    "FakeClock",
    "Indicator",
    "IndicatorId",
    "IndicatorType",
    "JsonObject",
    "JsonValue",
    "Peer",
    "PeerId",
    "PeerStatus",
    "Scope",
    "Sighting",
    "SystemClock",
    "TailPosition",
    "Tlp",
    "defang",
    "indicator_id",
    "infer_type",
    "make_indicator",
    "merge",
    "normalize",
    "refang",
]
