"""The privacy filter: the one path from a local indicator to anything that leaves.

``PrivacyFilter.sanitize(indicator, destination)`` answers with a
:class:`Decision`: a :class:`Shareable` copy holding exactly the fields of the
destination's level, or None and the reason. The checks, in order:

1. marking: scope and TLP against the destination (:mod:`dtim.privacy.marking`);
2. warninglists: own networks and domains, reserved ranges, benign infrastructure;
3. the value itself: internal names, addresses, e-mail or user info inside it;
4. the fields of the level; timestamps floored, sightings bucketed (and noised),
   each tag and custom field scrubbed: a failing tag is dropped, the indicator stays.

Filtering is idempotent (filtering what a Shareable says gives the same
Shareable) whenever noise is off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from dtim.model import Evidence, Indicator, JsonValue, Scope, Tlp
from dtim.privacy.destination import Destination, DestinationKind
from dtim.privacy.explain import Explanation, explain_decision
from dtim.privacy.marking import WithholdReason, check_reach
from dtim.privacy.noise import (
    KeyedNoise,
    NoiseSource,
    bucket,
    floor_seconds,
    noisy_count,
    unit_seconds,
)
from dtim.privacy.policy import PrivacyLevel, PrivacyPolicy
from dtim.privacy.scrub import Scrubber, SensitiveTerms
from dtim.privacy.shareable import Shareable, frozen_fields
from dtim.privacy.warninglists import Warninglist, WarninglistHit, Warninglists

DEFAULT_CACHE_SIZE = 65536
_NOTHING_MORE = (None,) * 7
_new_shareable = tuple.__new__


@dataclass(frozen=True, slots=True)
class Decision:
    """The filter's answer for one indicator and destination."""

    shareable: Shareable | None
    reason: WithholdReason | None = None
    detail: str = ""
    hit: WarninglistHit | None = None

    @property
    def allowed(self) -> bool:
        """True when something may leave."""
        return self.shareable is not None


@dataclass(frozen=True, slots=True)
class Acceptance:
    """Whether an indicator received from a peer may enter the store.

    A rejection should be counted against the peer (the gossip layer keeps score).
    """

    accepted: bool
    hit: WarninglistHit | None = None
    detail: str = ""


class PrivacyFilter:
    """A policy compiled for speed; build one per policy and reuse it.

    Args:
        policy: the node's privacy policy.
        warninglists: prebuilt lists (default: :meth:`Warninglists.for_policy`).
        extra_lists: operator list files already read (``load_warninglist_file``),
            used when ``warninglists`` is not given.
        noise: Laplace noise source for ``dp_epsilon`` (default: keyed, random secret).
        terms: further internal terms to strip (besides the policy's org names and
            redact terms and whatever :meth:`learn` adds).
        cache_size: how many tag and tag-set verdicts to remember.
    """

    def __init__(
        self,
        policy: PrivacyPolicy,
        *,
        warninglists: Warninglists | None = None,
        extra_lists: Iterable[Warninglist] = (),
        noise: NoiseSource | None = None,
        terms: Iterable[str] = (),
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.policy = policy
        self.cache_size = cache_size
        self._unit = unit_seconds(policy.timestamp_precision)
        self._builders: dict[PrivacyLevel, Callable[[Indicator, datetime | None], Shareable]] = {
            PrivacyLevel.STRICT: self._build_strict,
            PrivacyLevel.MODERATE: self._build_moderate,
            PrivacyLevel.OPEN: self._build_open,
        }
        self.warninglists = warninglists or Warninglists.for_policy(policy, extra_lists)
        self.terms = SensitiveTerms((*policy.org_names, *policy.redact_terms, *terms))
        self.scrubber = Scrubber(self.warninglists, self.terms)
        self.noise: NoiseSource = noise or KeyedNoise()
        self._tag_verdicts: dict[str, str | None] = {}
        self._tag_sets: dict[tuple[str, ...], tuple[str, ...]] = {}

    def learn(self, evidence: Evidence) -> None:
        """Remember local host names, user names and paths from evidence as internal terms.

        Feed it every sighting's evidence (and the stored evidence at start-up) so
        that a name a watcher saw can never leave in a tag, custom field or value.
        """
        self.terms.update((*evidence.hosts, *evidence.users, *evidence.paths))
        self._tag_verdicts.clear()
        self._tag_sets.clear()

    def level_for(self, destination: Destination) -> PrivacyLevel:
        """The destination's own level, else the peer's override, else the node's level."""
        if destination.level is not None:
            return destination.level
        peer = destination.name if destination.kind is DestinationKind.PEER else None
        return self.policy.level_for(peer)

    def sanitize(
        self, indicator: Indicator, destination: Destination, *, valid_until: datetime | None = None
    ) -> Decision:
        """Decide and, when allowed, build the sanitized copy.

        Args:
            indicator: the local view of the indicator.
            destination: where the copy would go.
            valid_until: expiry computed by aging (None when unknown).
        """
        refusal = self.refusal(indicator, destination)
        if refusal is not None:
            reason, detail, hit = refusal
            return Decision(None, reason, detail, hit)
        return Decision(self._build(indicator, self.level_for(destination), valid_until))

    def share(
        self, indicator: Indicator, destination: Destination, *, valid_until: datetime | None = None
    ) -> Shareable | None:
        """Like :meth:`sanitize` without the reason: the hot path of gossip and exports."""
        tlp = indicator.tlp
        # Fast path for the common case (private GREEN/CLEAR), which check_reach allows;
        # everything else takes the full marking check.
        if not (
            indicator.scope is Scope.PRIVATE
            and (tlp is Tlp.GREEN or tlp is Tlp.CLEAR)
            and tlp in destination.tlps
        ) and check_reach(indicator, destination):
            return None
        if self.warninglists.match(indicator) or self.scrubber.value_leak(indicator):
            return None
        return self._build(indicator, self.level_for(destination), valid_until)

    def share_many(
        self,
        indicators: Iterable[Indicator],
        destination: Destination,
        *,
        valid_until: Callable[[Indicator], datetime | None] | None = None,
    ) -> Iterator[Shareable]:
        """Sanitize many indicators for one destination, yielding only what may leave.

        The same decisions as :meth:`share`, with the per-destination work done
        once: exports, the public feed and gossip rounds use it.

        Args:
            indicators: local indicators, in any order.
            destination: where the copies go.
            valid_until: aging's expiry for an indicator (None: no ``valid_until``).
        """
        build = self._builders[self.level_for(destination)]
        match = self.warninglists.match
        leak = self.scrubber.value_leak
        tlps = destination.tlps
        for indicator in indicators:
            tlp = indicator.tlp
            if not (
                indicator.scope is Scope.PRIVATE
                and (tlp is Tlp.GREEN or tlp is Tlp.CLEAR)
                and tlp in tlps
            ) and check_reach(indicator, destination):
                continue
            if match(indicator) or leak(indicator):
                continue
            yield build(indicator, None if valid_until is None else valid_until(indicator))

    def refusal(
        self, indicator: Indicator, destination: Destination
    ) -> tuple[WithholdReason, str, WarninglistHit | None] | None:
        """Why the indicator may not reach the destination at all, or None."""
        marking = check_reach(indicator, destination)
        if marking is not None:
            return marking[0], marking[1], None
        hit = self.warninglists.match(indicator)
        if hit is not None:
            return WithholdReason.WARNINGLIST, f"on warninglist {hit.list_name} ({hit.entry})", hit
        leak = self.scrubber.value_leak(indicator)
        if leak is not None:
            return WithholdReason.INTERNAL_VALUE, leak, None
        return None

    def tag_verdict(self, tag: str) -> str | None:
        """Why a tag must be dropped, or None to keep it (cached per tag)."""
        verdict = self._tag_verdicts.get(tag, "")
        if verdict == "":
            if len(self._tag_verdicts) >= self.cache_size:
                self._tag_verdicts.clear()
            verdict = self._tag_verdicts[tag] = self.scrubber.text_leak(tag)
        return verdict

    def shared_tags(self, tags: tuple[str, ...]) -> tuple[str, ...]:
        """The tags that pass, in order (cached per tag set: sets repeat a lot)."""
        kept = self._tag_sets.get(tags)
        if kept is None:
            if len(self._tag_sets) >= self.cache_size:
                self._tag_sets.clear()
            kept = self._tag_sets[tags] = tuple(t for t in tags if self.tag_verdict(t) is None)
        return kept

    def custom_field_verdict(self, name: str, value: JsonValue) -> str | None:
        """Why a custom field must be dropped at ``open``, or None to keep it."""
        if not self.policy.allow_custom_fields:
            return "custom fields are off (privacy.allow_custom_fields)"
        if name not in self.policy.allowed_custom_fields:
            return "not in privacy.allowed_custom_fields"
        return self.scrubber.json_leak(value)

    def sightings(self, indicator: Indicator) -> int:
        """The sightings count as it leaves: noised when ``dp_epsilon`` > 0, then bucketed."""
        count = indicator.sightings
        if self.policy.dp_epsilon > 0:
            count = noisy_count(
                count, self.policy.dp_epsilon, self.noise, f"{indicator.id}:sightings", minimum=1
            )
        return bucket(count, self.policy.sightings_buckets)

    def accept_from_peer(self, indicator: Indicator) -> Acceptance:
        """Whether a peer's indicator may be stored: never when it is on a warninglist.

        Store accepted AMBER and RED indicators with no recipients: they then
        never leave this node again (they are not to be forwarded).
        """
        hit = self.warninglists.match(indicator)
        if hit is not None:
            return Acceptance(False, hit, f"on warninglist {hit.list_name} ({hit.entry})")
        return Acceptance(True)

    def explain(
        self, indicator: Indicator, destination: Destination, *, valid_until: datetime | None = None
    ) -> Explanation:
        """What would leave for ``destination`` and why, field by field."""
        return explain_decision(self, indicator, destination, valid_until)

    def _build(
        self, indicator: Indicator, level: PrivacyLevel, valid_until: datetime | None
    ) -> Shareable:
        return self._builders[level](indicator, valid_until)

    # One builder per level, chosen once per destination: this is the inner loop
    # of every export. tuple.__new__ skips Shareable.__new__, which refuses
    # everyone but the filter.

    def _build_strict(self, indicator: Indicator, valid_until: datetime | None) -> Shareable:
        return _new_shareable(
            Shareable,
            (
                indicator.id,
                indicator.type,
                indicator.value,
                indicator.tlp,
                PrivacyLevel.STRICT,
                *_NOTHING_MORE,
            ),
        )

    def _times(
        self, indicator: Indicator, valid_until: datetime | None
    ) -> tuple[datetime, datetime, datetime | None]:
        unit = self._unit
        first_seen = floor_seconds(indicator.first_seen, unit)
        # A single sighting has first == last: skip the second floor.
        last_seen = (
            first_seen
            if indicator.last_seen == indicator.first_seen
            else floor_seconds(indicator.last_seen, unit)
        )
        return (
            first_seen,
            last_seen,
            None if valid_until is None else floor_seconds(valid_until, unit),
        )

    def _build_moderate(self, indicator: Indicator, valid_until: datetime | None) -> Shareable:
        # _times inlined: this is the default level's inner loop.
        unit = self._unit
        first_seen = floor_seconds(indicator.first_seen, unit)
        last_seen = (
            first_seen
            if indicator.last_seen == indicator.first_seen
            else floor_seconds(indicator.last_seen, unit)
        )
        until = None if valid_until is None else floor_seconds(valid_until, unit)
        return _new_shareable(
            Shareable,
            (
                indicator.id,
                indicator.type,
                indicator.value,
                indicator.tlp,
                PrivacyLevel.MODERATE,
                indicator.confidence,
                first_seen,
                last_seen,
                until,
                None,
                None,
                None,
            ),
        )

    def _build_open(self, indicator: Indicator, valid_until: datetime | None) -> Shareable:
        first_seen, last_seen, until = self._times(indicator, valid_until)
        custom = indicator.custom_fields
        return _new_shareable(
            Shareable,
            (
                indicator.id,
                indicator.type,
                indicator.value,
                indicator.tlp,
                PrivacyLevel.OPEN,
                indicator.confidence,
                first_seen,
                last_seen,
                until,
                self.shared_tags(indicator.tags),
                self.sightings(indicator),
                frozen_fields(
                    {
                        name: value
                        for name, value in custom.items()
                        if self.custom_field_verdict(name, value) is None
                    }
                )
                if custom
                else (),
            ),
        )


@lru_cache(maxsize=16)
def filter_for(policy: PrivacyPolicy) -> PrivacyFilter:
    """A shared filter per policy (keyed noise with a per-process secret)."""
    return PrivacyFilter(policy)


def sanitize(
    indicator: Indicator,
    destination: Destination,
    policy: PrivacyPolicy,
    *,
    valid_until: datetime | None = None,
) -> Decision:
    """:meth:`PrivacyFilter.sanitize` with the shared filter for ``policy``."""
    return filter_for(policy).sanitize(indicator, destination, valid_until=valid_until)


def explain(
    indicator: Indicator,
    destination: Destination,
    policy: PrivacyPolicy,
    *,
    valid_until: datetime | None = None,
) -> Explanation:
    """:meth:`PrivacyFilter.explain` with the shared filter for ``policy``."""
    return filter_for(policy).explain(indicator, destination, valid_until=valid_until)


def accept_from_peer(indicator: Indicator, policy: PrivacyPolicy) -> Acceptance:
    """:meth:`PrivacyFilter.accept_from_peer` with the shared filter for ``policy``."""
    return filter_for(policy).accept_from_peer(indicator)
