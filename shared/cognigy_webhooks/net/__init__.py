"""Outbound network: the SSRF guard (:mod:`.netguard`), the one verifying TLS client context every
outbound call uses (:mod:`.tls`), and the endpoint probe (:mod:`.probe`)."""
