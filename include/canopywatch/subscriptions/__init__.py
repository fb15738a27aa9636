"""Alert subscriptions: webhooks per area, signed, idempotent, retried, dead-lettered, logged.

``targets`` (which URLs may receive: http(s) only, private and loopback hosts refused unless
``CANOPYWATCH_WEBHOOK_ALLOW_PRIVATE``), ``signing`` (HMAC-SHA256 of the body), ``store``
(the PostGIS tables ``subscriptions`` and ``subscription_deliveries``), ``delivery`` (one
event to one subscription with exponential backoff) and ``consumer`` (the
``canopywatch.alerts`` topic -> deliveries).
"""
