"""What more than one domain package needs and none of them owns: the outbox
sweep's claim statement, retry backoff, the SSRF guard, DKIM key checks, shared
validators and errors, the reasons written to rows, and running a batch so that
one bad row costs only itself (isolation). The bottom of the domain layers (see
.importlinter): it imports only ``models``, so any package may use it without
closing a loop."""
