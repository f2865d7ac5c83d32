"""Outgoing integrations: webhooks and syslog CEF. Everything they send passes the privacy filter."""
