"""The node's side of sensor tokens: ``dtim sensor token add|list|revoke``.

The token is printed once, at creation; the node keeps only its hash.
"""

from __future__ import annotations

from datetime import datetime

from dtim.errors import ValidationError
from dtim.model import JsonObject
from dtim.model.clock import iso
from dtim.sensor.tokens import new_token, valid_name
from dtim.store import Store
from dtim.store.sensors import SensorStore, SensorToken


def token_json(sensor: SensorToken) -> JsonObject:
    """A sensor as listed (never its token or hash)."""
    return {
        "id": sensor.id,
        "name": sensor.name,
        "status": "active" if sensor.active else "revoked",
        "created_at": iso(sensor.created_at),
        "revoked_at": None if sensor.revoked_at is None else iso(sensor.revoked_at),
        "last_used": None if sensor.last_used is None else iso(sensor.last_used),
    }


async def add_sensor(store: Store, name: str, now: datetime) -> JsonObject:
    """Make a token for a new sensor; the answer holds the token (shown only now).

    Raises:
        ValidationError: a bad or taken name.
    """
    if not valid_name(name):
        raise ValidationError(
            "name", "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    made = new_token()
    sensors = SensorStore(store)
    await sensors.add_token(made.token_id, name, made.secret_hash, now)
    added = await sensors.token(made.token_id)
    if added is None:  # pragma: no cover  # just written in the same store
        raise ValidationError("name", "the new sensor was not stored")
    return {**token_json(added), "token": made.token}


async def list_sensors(store: Store) -> list[JsonObject]:
    """Every sensor, revoked ones included."""
    return [token_json(s) for s in await SensorStore(store).tokens()]


async def revoke_sensor(store: Store, name_or_id: str, now: datetime) -> JsonObject:
    """Revoke a sensor's token; its next request is refused.

    Raises:
        ValidationError: no such sensor.
    """
    return token_json(await SensorStore(store).revoke(name_or_id, now))
