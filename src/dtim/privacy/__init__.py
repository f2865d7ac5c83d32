"""The privacy filter: everything that leaves a node goes through here.

Build a :class:`PrivacyFilter` from a :class:`PrivacyPolicy`, then ask it for a
:class:`Shareable` per indicator and :class:`Destination`. Gossip, the public
endpoint, TAXII and exports accept nothing else. Pure: imports only
``dtim.model`` and ``dtim.errors``.
"""

from dtim.privacy.destination import Destination, DestinationKind
from dtim.privacy.explain import Explanation, FieldDecision
from dtim.privacy.filter import (
    Acceptance,
    Decision,
    PrivacyFilter,
    accept_from_peer,
    explain,
    filter_for,
    sanitize,
)
from dtim.privacy.marking import WithholdReason, check_reach
from dtim.privacy.noise import KeyedNoise, NoiseSource, SeededNoise, bucket, coarsen, noisy_count
from dtim.privacy.policy import (
    DEFAULT_SIGHTINGS_BUCKETS,
    PrivacyLevel,
    PrivacyPolicy,
    TimestampPrecision,
    policy_from_mapping,
)
from dtim.privacy.shareable import LEVEL_FIELDS, Shareable
from dtim.privacy.warninglists import (
    BUILTIN_LISTS,
    Category,
    Warninglist,
    WarninglistHit,
    Warninglists,
    builtin_warninglists,
    load_warninglist_file,
    parse_warninglist,
)

__all__ = [
    "BUILTIN_LISTS",
    "DEFAULT_SIGHTINGS_BUCKETS",
    "LEVEL_FIELDS",
    "Acceptance",
    "Category",
    "Decision",
    "Destination",
    "DestinationKind",
    "Explanation",
    "FieldDecision",
    "KeyedNoise",
    "NoiseSource",
    "PrivacyFilter",
    "PrivacyLevel",
    "PrivacyPolicy",
    "SeededNoise",
    "Shareable",
    "TimestampPrecision",
    "Warninglist",
    "WarninglistHit",
    "Warninglists",
    "WithholdReason",
    "accept_from_peer",
    "bucket",
    "builtin_warninglists",
    "check_reach",
    "coarsen",
    "explain",
    "filter_for",
    "load_warninglist_file",
    "noisy_count",
    "parse_warninglist",
    "policy_from_mapping",
    "sanitize",
]
