"""What more than one domain package needs and none of them owns: the outbox
sweep's claim statement, retry backoff, the SSRF guard, DKIM key checks, shared
validators and errors, and the reasons written to rows. The bottom of the domain
layers (see .importlinter): it imports only ``models``, so any package may use it
without closing a loop."""
