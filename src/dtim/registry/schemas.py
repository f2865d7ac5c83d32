"""Request and response shapes of the registry API, for validation and the OpenAPI document.

Signatures are always checked over the JSON the node sent (see
:mod:`dtim.registry.statements`), never over these models re-serialised.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from dtim.registry.statements import (
    MAX_CONTACT,
    MAX_DISPLAY_NAME,
    MAX_ENDPOINT_LENGTH,
    MAX_SECTORS,
    STATEMENT_VERSION,
)

_KEY = Field(
    min_length=44,
    max_length=44,
    description="Standard base64 of the raw 32-byte Ed25519 public key.",
)
_SIGNATURE = Field(
    min_length=88,
    max_length=88,
    description="Base64 Ed25519 signature of the RFC 8785 canonical JSON of `statement`.",
)


class ProfileModel(BaseModel):
    """Optional metadata a node chooses to publish (never required)."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME)
    contact: str | None = Field(
        None, max_length=MAX_CONTACT, description="An e-mail address or URL."
    )
    sectors: list[str] | None = Field(
        None, max_length=MAX_SECTORS, description='e.g. ["education", "hosting"]'
    )


class StatementModel(BaseModel):
    """What a node states about itself, signed by its own key."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["dtim-registry-entry", "dtim-registry-withdrawal"]
    version: Literal[1] = Field(description=f"Always {STATEMENT_VERSION}.")
    public_key: str = _KEY
    endpoint: str = Field(
        max_length=MAX_ENDPOINT_LENGTH, description="Canonical https:// URL of the node's peer API."
    )
    issued_at: StrictInt = Field(
        gt=0, description="Unix seconds; must grow with every new statement."
    )
    expires_at: StrictInt = Field(
        gt=0, description="Unix seconds; at most 3 heartbeats after issued_at."
    )
    metadata: ProfileModel | None = None


class RegistrationRequest(BaseModel):
    """``POST /api/v1/nodes/register``: the seed's two fields plus the signed statement."""

    model_config = ConfigDict(extra="forbid")

    public_key: str = _KEY
    endpoint: str = Field(
        max_length=MAX_ENDPOINT_LENGTH, description="https:// URL peers reach the node at."
    )
    statement: StatementModel
    signature: str = _SIGNATURE


class WithdrawalRequest(BaseModel):
    """``DELETE /api/v1/nodes/{node_id}``: a signed withdrawal statement."""

    model_config = ConfigDict(extra="forbid")

    statement: StatementModel
    signature: str = _SIGNATURE


class PeerItem(BaseModel):
    """One listed node: the seed's fields, the node id, and the node's own signed statement."""

    endpoint: str
    public_key: str
    node_id: str = Field(description="Hex SHA-256 of the raw public key.")
    statement: StatementModel
    signature: str


class RegistrationResponse(BaseModel):
    """The seed's ``{"status": "ok", "peers": [...]}`` plus the entry's expiry."""

    status: Literal["ok"]
    node_id: str
    expires_at: int
    heartbeat_seconds: float = Field(description="Refresh the entry at least this often.")
    peers: list[PeerItem] = Field(
        description="The first (up to 100) entries of the peer list; GET /api/v1/peers for more."
    )
    next_since: int | None = Field(
        description="Cursor for the next page, or null when this was all."
    )


class WithdrawalResponse(BaseModel):
    """The withdrawal was recorded (and will reach federated registries)."""

    status: Literal["withdrawn"]
    node_id: str


class RegistryInfo(BaseModel):
    """``GET /api/v1/registry``: who this registry is and the rules it applies."""

    node_id: str = Field(description="The registry's own key id: the recipient of signed requests.")
    public_key: str
    fingerprint: str
    instance: str = Field(
        description="Id of the registry database; changes only if it is recreated."
    )
    heartbeat_seconds: float
    entry_lifetime_seconds: int = Field(description="Lifetime nodes should give their statements.")
    max_lifetime_seconds: int
    signature_window_seconds: int
    page_size: int
    max_page_size: int
    version: str


class ErrorModel(BaseModel):
    """Every 4xx/5xx answer."""

    error: str
    reason: str
