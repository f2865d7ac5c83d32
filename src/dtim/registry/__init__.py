"""The opt-in peer registry: discovery that never becomes a point of trust.

Nodes publish statements about themselves (endpoint, key, time) signed with
their own key; a registry stores and serves them as received, refuses
registrations that do not prove possession of the key, expires entries that are
not refreshed, and pulls from federated registries. Nodes verify every entry
themselves and add newly seen nodes as ``pending`` peers for a person to approve.

Modules: :mod:`~dtim.registry.statements` (signed entries), :mod:`~dtim.registry.records`
(database), :mod:`~dtim.registry.routes` (HTTP API), :mod:`~dtim.registry.http` (errors
and limits), :mod:`~dtim.registry.federation`, :mod:`~dtim.registry.runtime` (the
registry process), :mod:`~dtim.registry.client` and :mod:`~dtim.registry.discovery`
(the node side).
"""
