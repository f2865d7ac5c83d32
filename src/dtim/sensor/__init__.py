"""Remote sensors: watchers on other hosts that submit sightings to a node's admin API.

``tokens`` (the token format), ``wire`` (sightings as JSON), ``queue`` (the
sensor's on-disk buffer), ``client`` (submitting batches over TLS) and
``runtime`` (``dtim sensor run``).
"""
