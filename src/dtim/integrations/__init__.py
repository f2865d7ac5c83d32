"""Outgoing integrations: webhooks and syslog CEF, fed through the privacy filter."""
