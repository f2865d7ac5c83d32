"""Traffic Light Protocol 2.0 markings, with the TLP 1.0 names as aliases."""

from __future__ import annotations

from enum import StrEnum

from dtim.errors import ValidationError


class Tlp(StrEnum):
    """TLP 2.0 levels, from most to least shareable."""

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        """0 for CLEAR up to 4 for RED: a higher rank is more restrictive."""
        return _RANK[self]

    @property
    def needs_recipients(self) -> bool:
        """AMBER, AMBER+STRICT and RED go only to listed recipients."""
        return self.rank >= Tlp.AMBER.rank

    @classmethod
    def parse(cls, raw: str, field: str = "tlp") -> Tlp:
        """Read a TLP name in any common spelling (``TLP:AMBER+STRICT``, ``white``).

        Raises:
            ValidationError: the name is not a TLP level.
        """
        name = raw.strip().lower().removeprefix("tlp:").replace("_", "+").replace(" ", "")
        name = _ALIASES.get(name, name)
        try:
            return cls(name)
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise ValidationError(
                field, f"unknown TLP {raw!r} (expected one of {choices}, or white)"
            ) from None

    def stricter(self, other: Tlp) -> Tlp:
        """Return the more restrictive of two markings."""
        return self if self.rank >= other.rank else other


_RANK = {Tlp.CLEAR: 0, Tlp.GREEN: 1, Tlp.AMBER: 2, Tlp.AMBER_STRICT: 3, Tlp.RED: 4}
_ALIASES = {"white": "clear", "amberstrict": "amber+strict", "amber-strict": "amber+strict"}
